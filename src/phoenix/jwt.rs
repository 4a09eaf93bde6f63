//! Token verification for the Supabase Realtime front.
//!
//! Owns: the HS256/384/512 secrets (several, so a secret can be rotated
//! without dropping clients), the opaque API keys (`sb_publishable_…`,
//! `sb_secret_…`) and the roles they stand for, and optional exact-match
//! claim validators. Receives: a token from the handshake (`apikey` /
//! `x-api-key`), a join's `access_token`, a later `access_token` push or a
//! REST call's bearer token, with the current Unix time. Hands on: the
//! verified [`Claims`] (role, expiry, the whole claim set for policy
//! templates) or a typed [`JwtError`] whose message matches Supabase's.
//!
//! Signature checking is `jsonwebtoken` (RustCrypto backend); the claim rules
//! are Supabase's (realtime `jwt_verification.ex`): `exp` must be a number
//! greater than now (no leeway), `role` a string, `iat` a number if present.
//! With a JWKS ([`super::jwks`]), RS/PS/ES/EdDSA tokens are verified by the
//! key their `kid` names, and an HS token whose `kid` names an `oct` key uses
//! that key instead of the secrets, as Supabase does.

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::jwks::Jwks;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// No token was given at all.
    #[error("No API key was provided in the `x-api-key` header or `apikey` query parameter")]
    Missing,
    /// Not three base64url parts of JSON.
    #[error("The token provided is not a valid JWT")]
    Malformed,
    /// No configured secret verifies the signature.
    #[error("Failed to validate JWT signature")]
    BadSignature,
    /// An algorithm that is neither HMAC nor a JWKS signature algorithm.
    #[error(
        "Token algorithm {alg} is not supported: sign with HS256/384/512, or RS/PS/ES/EdDSA with a key in [supabase] jwks"
    )]
    UnsupportedAlgorithm {
        /// The `alg` header.
        alg: String,
    },
    /// An asymmetric token whose `kid` names no JWKS key for its `alg`
    /// (Supabase's `JwtSignerError` wording).
    #[error("{}", signer_error(kid.as_deref()))]
    UnknownSigningKey {
        /// The `kid` header, if any.
        kid: Option<String>,
    },
    /// `exp` or `role` is missing or of the wrong type.
    #[error("Fields `role` and `exp` are required in JWT")]
    MissingClaims,
    /// `iat` is present but not a number.
    #[error("Field `iat` must be a number")]
    BadIssuedAt,
    /// The token expired.
    #[error("Token has expired {ago} seconds ago")]
    Expired {
        /// Seconds since `exp`.
        ago: u64,
    },
    /// A configured claim validator did not match.
    #[error("Claim `{claim}` does not have the required value")]
    ClaimMismatch {
        /// The claim name.
        claim: String,
    },
    /// An `sb_…` key that is not configured.
    #[error("Unknown API key: opaque keys must be listed in [supabase.api_keys]")]
    UnknownApiKey,
}

fn signer_error(kid: Option<&str>) -> String {
    match kid {
        Some(k) => format!(
            "Failed to generate JWT signer for key ID (kid) {k:?}, check your JWT secret or JWKS configuration"
        ),
        None => "Failed to generate JWT signer, check your JWT secret or JWKS configuration".into(),
    }
}

/// A verified identity.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    /// `role` (`anon`, `authenticated`, `service_role`, ...).
    pub role: Arc<str>,
    /// `exp` as Unix seconds; `None` for opaque keys, which never expire.
    pub exp: Option<u64>,
    /// Every claim, for policy templates (`{sub}`, `{claims.x}`); opaque keys
    /// get `{"role": ..}` only.
    pub all: Arc<Map<String, Value>>,
}

impl Claims {
    /// The role that bypasses private-channel rules.
    pub fn is_service_role(&self) -> bool {
        &*self.role == "service_role"
    }

    /// A claim as a string (numbers and booleans printed), for templates.
    pub fn claim_str(&self, name: &str) -> Option<String> {
        match self.all.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

/// Verifies tokens against the configured secrets and keys.
#[derive(Clone)]
pub struct Verifier {
    keys: Vec<DecodingKey>,
    api_keys: HashMap<Arc<str>, Arc<str>>,
    validators: Vec<(Arc<str>, Value)>,
    validation: Validation,
    jwks: Option<Arc<Jwks>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("secrets", &self.keys.len())
            .field("api_keys", &self.api_keys.len())
            .field("jwks", &self.jwks.as_ref().map_or(0, |j| j.len()))
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// `secrets` are tried in order; `api_keys` maps opaque keys to roles;
    /// `validators` are claims that must equal the given values.
    pub fn new(
        secrets: &[Arc<[u8]>],
        api_keys: HashMap<Arc<str>, Arc<str>>,
        validators: Vec<(Arc<str>, Value)>,
    ) -> Verifier {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];
        // The claim rules below are Supabase's, checked against our clock.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        Verifier {
            keys: secrets
                .iter()
                .map(|s| DecodingKey::from_secret(s))
                .collect(),
            api_keys,
            validators,
            validation,
            jwks: None,
        }
    }

    /// Also verifies with the keys of `jwks`, selected by `kid`.
    pub fn with_jwks(mut self, jwks: Option<Arc<Jwks>>) -> Verifier {
        self.jwks = jwks;
        self
    }

    /// Whether `token` is an opaque key rather than a JWT.
    pub fn is_opaque(token: &str) -> bool {
        token.starts_with("sb_")
    }

    /// Verifies `token` at Unix time `now`.
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, JwtError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(JwtError::Missing);
        }
        if Self::is_opaque(token) {
            let role = self.api_keys.get(token).ok_or(JwtError::UnknownApiKey)?;
            let mut all = Map::new();
            all.insert("role".into(), Value::String(role.to_string()));
            return Ok(Claims {
                role: role.clone(),
                exp: None,
                all: Arc::new(all),
            });
        }
        let claims = self.signature(token)?;
        self.check_claims(claims, now)
    }

    fn signature(&self, token: &str) -> Result<Map<String, Value>, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        let hmac = matches!(
            header.alg,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        );
        let jwks_key = match (&self.jwks, &header.kid) {
            (Some(j), Some(kid)) => j.key(kid, header.alg),
            _ => None,
        };
        if let Some(key) = jwks_key {
            let mut v = self.validation.clone();
            v.algorithms = vec![header.alg];
            return Self::decode(token, key, &v);
        }
        if !hmac {
            return Err(if self.jwks.is_some() {
                JwtError::UnknownSigningKey { kid: header.kid }
            } else {
                JwtError::UnsupportedAlgorithm {
                    alg: format!("{:?}", header.alg),
                }
            });
        }
        let mut last = JwtError::BadSignature;
        for key in &self.keys {
            match Self::decode(token, key, &self.validation) {
                Err(JwtError::BadSignature) => last = JwtError::BadSignature,
                other => return other,
            }
        }
        Err(last)
    }

    fn decode(
        token: &str,
        key: &DecodingKey,
        v: &Validation,
    ) -> Result<Map<String, Value>, JwtError> {
        match jsonwebtoken::decode::<Map<String, Value>>(token, key, v) {
            Ok(data) => Ok(data.claims),
            Err(e) => Err(match e.kind() {
                ErrorKind::InvalidSignature => JwtError::BadSignature,
                _ => JwtError::Malformed,
            }),
        }
    }

    fn check_claims(&self, all: Map<String, Value>, now: u64) -> Result<Claims, JwtError> {
        // RFC 7519 §4.1.2 and §4.1.5: `sub` is a string and `nbf` a
        // NumericDate. The signature library already refuses some other
        // shapes (a non-empty array or object) as malformed; refuse them all
        // the same way.
        if all.get("sub").is_some_and(|v| !v.is_string())
            || all.get("nbf").is_some_and(|v| !v.is_number())
        {
            return Err(JwtError::Malformed);
        }
        let exp = all.get("exp").and_then(Value::as_f64);
        let role = all.get("role").and_then(Value::as_str);
        let (Some(exp), Some(role)) = (exp, role) else {
            return Err(JwtError::MissingClaims);
        };
        if all.get("iat").is_some_and(|v| !v.is_number()) {
            return Err(JwtError::BadIssuedAt);
        }
        let now_f = now as f64;
        if exp <= now_f {
            return Err(JwtError::Expired {
                ago: (now_f - exp).floor() as u64,
            });
        }
        for (claim, want) in &self.validators {
            if all.get(&**claim) != Some(want) {
                return Err(JwtError::ClaimMismatch {
                    claim: claim.to_string(),
                });
            }
        }
        Ok(Claims {
            role: Arc::from(role),
            exp: Some(exp.floor() as u64),
            all: Arc::new(all),
        })
    }
}

/// Signs `claims` with `secret` under an HMAC `alg` (HS256/384/512; any
/// other algorithm panics). For tests only.
pub fn sign_hs(alg: Algorithm, claims: &Value, secret: &[u8]) -> String {
    let header = jsonwebtoken::Header::new(alg);
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .expect("HMAC signing of a JSON value cannot fail")
}

/// The properties the `jwt` fuzz target checks (kept here so
/// `tests/fuzz_corpus.rs` replays the corpus through the same code). The
/// first byte picks the mode:
/// - even: the rest, as text, is a token: [`Verifier::verify`] never panics,
///   and accepts only the configured opaque key or a token of our secret;
/// - odd: the rest, if a JSON object, is a claims set signed with our
///   secret: verified, it gives back the very same claims when `role` and a
///   future `exp` are there (and a numeric `iat` if any), the matching
///   typed error when not; signed with another secret, it is refused.
#[doc(hidden)]
pub(crate) fn check_token(data: &[u8]) {
    const SECRET: &[u8] = b"fuzz-secret-fuzz-secret-fuzz-secret-fuzz";
    const NOW: u64 = 1_700_000_000;
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut api_keys = HashMap::new();
    api_keys.insert(Arc::from("sb_publishable_fuzz"), Arc::from("anon"));
    let v = Verifier::new(&[Arc::from(SECRET)], api_keys, Vec::new());
    if mode % 2 == 0 {
        let token = String::from_utf8_lossy(rest);
        match v.verify(&token, NOW) {
            Ok(c) if Verifier::is_opaque(token.trim()) => {
                assert_eq!((token.trim(), &*c.role), ("sb_publishable_fuzz", "anon"));
            }
            Ok(c) => {
                assert!(c.exp.is_some_and(|e| e as f64 >= NOW as f64 - 1.0));
                assert_eq!(c.all.get("role").and_then(Value::as_str), Some(&*c.role));
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
        return;
    }
    let Ok(Value::Object(claims)) = serde_json::from_slice::<Value>(rest) else {
        return;
    };
    let value = Value::Object(claims);
    let token = sign_hs(Algorithm::HS256, &value, SECRET);
    // What the verifier reads is the claims printed and parsed again, and
    // serde_json's float parsing is not exact (1.9000077777777778e102
    // comes back an ulp lower): compare with that.
    let Ok(Value::Object(claims)) = serde_json::from_str::<Value>(&value.to_string()) else {
        panic!("printed JSON does not parse");
    };
    let exp = claims.get("exp").and_then(Value::as_f64);
    let role = claims.get("role").and_then(Value::as_str);
    let got = v.verify(&token, NOW);
    // RFC 7519 §4.1.2: `sub` is a string; a token whose `sub` is not is
    // refused, whatever else it holds.
    let sub_is_odd = claims.get("sub").is_some_and(|s| !s.is_string());
    let nbf_is_odd = claims.get("nbf").is_some_and(|n| !n.is_number());
    // A non-numeric `exp` lacks the claim (Supabase's wording), unless the
    // signature library's claim parser refuses its shape first (a
    // non-empty array or object): either way, refused.
    let exp_is_odd = claims.get("exp").is_some_and(|e| !e.is_number());
    match (exp, role) {
        _ if sub_is_odd || nbf_is_odd => assert_eq!(got, Err(JwtError::Malformed)),
        _ if exp_is_odd => assert!(
            matches!(got, Err(JwtError::MissingClaims | JwtError::Malformed)),
            "{got:?}"
        ),
        (Some(exp), Some(role)) => {
            if claims.get("iat").is_some_and(|i| !i.is_number()) {
                assert_eq!(got, Err(JwtError::BadIssuedAt));
            } else if exp <= NOW as f64 {
                assert!(matches!(got, Err(JwtError::Expired { .. })), "{got:?}");
            } else {
                let c = got.unwrap_or_else(|e| panic!("our own token refused: {e}"));
                assert_eq!(&*c.role, role);
                assert_eq!(*c.all, claims, "claims changed on the way");
            }
        }
        _ => assert_eq!(got, Err(JwtError::MissingClaims)),
    }
    let other = sign_hs(Algorithm::HS256, &value, b"another-secret");
    assert_eq!(v.verify(&other, NOW), Err(JwtError::BadSignature));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"super-secret-jwt-token-with-at-least-32-characters-long";
    const OLD: &[u8] = b"old-secret-old-secret-old-secret-old-secret";
    const NOW: u64 = 1_900_000_000;

    fn verifier() -> Verifier {
        let mut keys = HashMap::new();
        keys.insert(Arc::from("sb_publishable_abc"), Arc::from("anon"));
        keys.insert(Arc::from("sb_secret_xyz"), Arc::from("service_role"));
        Verifier::new(&[Arc::from(SECRET), Arc::from(OLD)], keys, Vec::new())
    }

    fn tok(claims: Value) -> String {
        sign_hs(Algorithm::HS256, &claims, SECRET)
    }

    #[test]
    fn accepts_each_hs_algorithm() {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let t = sign_hs(
                alg,
                &json!({"role":"authenticated","exp":NOW+60,"sub":"u1"}),
                SECRET,
            );
            let c = verifier().verify(&t, NOW).unwrap();
            assert_eq!(&*c.role, "authenticated");
            assert_eq!(c.exp, Some(NOW + 60));
            assert_eq!(c.claim_str("sub").as_deref(), Some("u1"));
        }
    }

    #[test]
    fn rotation_tries_every_secret() {
        let t = sign_hs(Algorithm::HS256, &json!({"role":"anon","exp":NOW+1}), OLD);
        assert!(verifier().verify(&t, NOW).is_ok());
        let t = sign_hs(
            Algorithm::HS256,
            &json!({"role":"anon","exp":NOW+1}),
            b"other-secret",
        );
        assert_eq!(verifier().verify(&t, NOW), Err(JwtError::BadSignature));
    }

    #[test]
    fn exp_and_role_are_required() {
        for c in [
            json!({"role":"anon"}),
            json!({"exp":NOW+5}),
            json!({"role":1,"exp":NOW+5}),
            json!({"role":"anon","exp":"soon"}),
        ] {
            assert_eq!(
                verifier().verify(&tok(c.clone()), NOW),
                Err(JwtError::MissingClaims),
                "{c}"
            );
        }
        assert_eq!(
            JwtError::MissingClaims.to_string(),
            "Fields `role` and `exp` are required in JWT"
        );
    }

    #[test]
    fn expiry_has_no_leeway_and_says_how_long_ago() {
        let t = tok(json!({"role":"anon","exp":NOW-12}));
        let e = verifier().verify(&t, NOW).unwrap_err();
        assert_eq!(e, JwtError::Expired { ago: 12 });
        assert_eq!(e.to_string(), "Token has expired 12 seconds ago");
        let t = tok(json!({"role":"anon","exp":NOW}));
        assert_eq!(
            verifier().verify(&t, NOW),
            Err(JwtError::Expired { ago: 0 })
        );
    }

    #[test]
    fn iat_must_be_a_number() {
        let t = tok(json!({"role":"anon","exp":NOW+5,"iat":"yesterday"}));
        assert_eq!(verifier().verify(&t, NOW), Err(JwtError::BadIssuedAt));
        let t = tok(json!({"role":"anon","exp":NOW+5,"iat":NOW-5}));
        assert!(verifier().verify(&t, NOW).is_ok());
    }

    #[test]
    fn malformed_and_unsupported() {
        assert_eq!(
            verifier().verify("not.a.jwt", NOW),
            Err(JwtError::Malformed)
        );
        assert_eq!(verifier().verify("abc", NOW), Err(JwtError::Malformed));
        assert_eq!(verifier().verify("  ", NOW), Err(JwtError::Missing));
        // alg "none"
        let t = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJyb2xlIjoiYW5vbiIsImV4cCI6MTl9.";
        assert!(matches!(
            verifier().verify(t, NOW),
            Err(JwtError::Malformed | JwtError::UnsupportedAlgorithm { .. })
        ));
        // RS256 header with an HMAC body
        let t = "eyJhbGciOiJSUzI1NiJ9.eyJyb2xlIjoiYW5vbiIsImV4cCI6MTl9.AAAA";
        assert!(matches!(
            verifier().verify(t, NOW),
            Err(JwtError::UnsupportedAlgorithm { .. })
        ));
    }

    /// A fresh P-256 key: (its JWK with `kid`, PKCS#8 DER to sign with).
    fn es256_key(kid: &str) -> (Value, Vec<u8>) {
        use base64::Engine;
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let raw = kp.public_key_raw();
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let jwk = json!({"kty":"EC","crv":"P-256","kid":kid,"use":"sig",
            "x":b64(&raw[1..33]),"y":b64(&raw[33..65])});
        (jwk, kp.serialize_der())
    }

    fn sign_es(claims: &Value, kid: Option<&str>, der: &[u8]) -> String {
        let mut h = jsonwebtoken::Header::new(Algorithm::ES256);
        h.kid = kid.map(str::to_string);
        let k = jsonwebtoken::EncodingKey::from_ec_der(der);
        jsonwebtoken::encode(&h, claims, &k).unwrap()
    }

    #[test]
    fn jwks_keys_are_selected_by_kid() {
        let (jwk1, pem1) = es256_key("k1");
        let (_, other) = es256_key("k1");
        let oct =
            json!({"kty":"oct","kid":"h1","k":"b2N0LWtleS1vY3Qta2V5LW9jdC1rZXktb2N0LWtleS0xMjM"});
        let set = Jwks::parse(&json!({"keys":[jwk1, oct]}).to_string()).unwrap();
        let v = verifier().with_jwks(Some(Arc::new(set)));
        let claims = json!({"role":"authenticated","sub":"u1","exp":NOW+60});
        let c = v.verify(&sign_es(&claims, Some("k1"), &pem1), NOW).unwrap();
        assert_eq!(c.claim_str("sub").as_deref(), Some("u1"));
        // Supabase's claim rules still apply.
        let old = json!({"role":"anon","exp":NOW-2});
        assert_eq!(
            v.verify(&sign_es(&old, Some("k1"), &pem1), NOW),
            Err(JwtError::Expired { ago: 2 })
        );
        // Another key under the same kid, an unknown kid, no kid.
        assert_eq!(
            v.verify(&sign_es(&claims, Some("k1"), &other), NOW),
            Err(JwtError::BadSignature)
        );
        let e = v
            .verify(&sign_es(&claims, Some("k9"), &pem1), NOW)
            .unwrap_err();
        assert_eq!(
            e,
            JwtError::UnknownSigningKey {
                kid: Some("k9".into())
            }
        );
        assert!(e.to_string().contains("(kid) \"k9\""), "{e}");
        assert_eq!(
            v.verify(&sign_es(&claims, None, &pem1), NOW),
            Err(JwtError::UnknownSigningKey { kid: None })
        );
        // HS with the kid of an `oct` key uses it; other HS tokens the secrets.
        let mut h = jsonwebtoken::Header::new(Algorithm::HS256);
        h.kid = Some("h1".into());
        let t = jsonwebtoken::encode(
            &h,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"oct-key-oct-key-oct-key-oct-key-123"),
        )
        .unwrap();
        assert!(v.verify(&t, NOW).is_ok());
        assert!(
            v.verify(&tok(json!({"role":"anon","exp":NOW+5})), NOW)
                .is_ok()
        );
        // Without a JWKS an ES256 token is simply unsupported.
        assert!(matches!(
            verifier().verify(&sign_es(&claims, Some("k1"), &pem1), NOW),
            Err(JwtError::UnsupportedAlgorithm { .. })
        ));
    }

    #[test]
    fn opaque_keys_map_to_roles() {
        let c = verifier().verify("sb_secret_xyz", NOW).unwrap();
        assert!(c.is_service_role());
        assert_eq!(c.exp, None);
        assert_eq!(
            &*verifier().verify("sb_publishable_abc", NOW).unwrap().role,
            "anon"
        );
        assert_eq!(
            verifier().verify("sb_publishable_nope", NOW),
            Err(JwtError::UnknownApiKey)
        );
    }

    #[test]
    fn claim_validators_match_exactly() {
        let v = Verifier::new(
            &[Arc::from(SECRET)],
            HashMap::new(),
            vec![(Arc::from("iss"), json!("supabase"))],
        );
        let ok = tok(json!({"role":"anon","exp":NOW+5,"iss":"supabase"}));
        assert!(v.verify(&ok, NOW).is_ok());
        let bad = tok(json!({"role":"anon","exp":NOW+5,"iss":"other"}));
        assert_eq!(
            v.verify(&bad, NOW),
            Err(JwtError::ClaimMismatch {
                claim: "iss".into()
            })
        );
    }
}
