//! A test identity provider: signing keys made here, their JWKS served over real HTTP
//! on loopback, and access tokens signed with them.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

pub const ISSUER: &str = "https://id.example.test/realms/hookd";
pub const AUDIENCE: &str = "hookd-api";

/// The kinds of key an issuer may sign with.
#[derive(Debug, Clone, Copy)]
pub enum KeyKind {
    Rs256,
    Es256,
    EdDsa,
}

/// A key that signs tokens, with its public half as a JWK.
pub struct SigningKey {
    pub kid: String,
    pub algorithm: Algorithm,
    encoding: EncodingKey,
    pub jwk: Value,
}

impl SigningKey {
    pub fn new(kind: KeyKind, kid: &str) -> Self {
        let rng = ring::rand::SystemRandom::new();
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        match kind {
            KeyKind::Es256 => {
                let pkcs8 =
                    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("EC key");
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                    .expect("EC key pair");
                // An uncompressed point: 0x04, then x and y.
                let point = pair.public_key().as_ref();
                Self {
                    kid: kid.into(),
                    algorithm: Algorithm::ES256,
                    encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
                    jwk: json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                                "x": b64(&point[1..33]), "y": b64(&point[33..65])}),
                }
            }
            KeyKind::EdDsa => {
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("Ed25519 key");
                let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("Ed25519 key pair");
                Self {
                    kid: kid.into(),
                    algorithm: Algorithm::EdDSA,
                    encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
                    jwk: json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "kid": kid,
                                "x": b64(pair.public_key().as_ref())}),
                }
            }
            KeyKind::Rs256 => {
                use rsa::pkcs1::EncodeRsaPrivateKey;
                use rsa::traits::PublicKeyParts;
                let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key");
                let der = key.to_pkcs1_der().expect("PKCS#1");
                Self {
                    kid: kid.into(),
                    algorithm: Algorithm::RS256,
                    encoding: EncodingKey::from_rsa_der(der.as_bytes()),
                    jwk: json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                                "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be())}),
                }
            }
        }
    }

    /// A token with these claims, signed with this key.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign")
    }
}

/// The issuer: its JWKS at `jwks_url`, and the key it signs with now.
pub struct TestIssuer {
    pub jwks_url: String,
    published: Arc<Mutex<Vec<Value>>>,
    pub key: SigningKey,
}

impl TestIssuer {
    pub async fn start(kind: KeyKind) -> Self {
        let key = SigningKey::new(kind, "key-1");
        let published = Arc::new(Mutex::new(vec![key.jwk.clone()]));
        let served = published.clone();
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let keys = served.lock().expect("keys").clone();
                async move { axum::Json(json!({ "keys": keys })) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { jwks_url: format!("http://{address}/jwks"), published, key }
    }

    /// Publishes `key` in place of every earlier one: the issuer rotated its keys.
    pub fn rotate_to(&self, key: &SigningKey) {
        *self.published.lock().expect("keys") = vec![key.jwk.clone()];
    }

    /// `serve` flags that make hookd accept this issuer's tokens.
    pub fn hookd_flags(&self) -> Vec<String> {
        ["--oauth-issuer", ISSUER, "--oauth-audience", AUDIENCE, "--oauth-jwks-url", &self.jwks_url]
            .map(str::to_owned)
            .to_vec()
    }

    /// A token for `account_id` with `scope`, valid for ten minutes.
    pub fn token(&self, account_id: &str, scope: &str) -> String {
        self.key.sign(&claims(account_id, scope))
    }
}

/// Claims as a typical issuer sends them, for hookd's issuer and audience.
pub fn claims(account_id: &str, scope: &str) -> Value {
    let now = now_seconds();
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": now, "nbf": now, "exp": now + 600,
        "hookd_account": account_id, "scope": scope,
    })
}

pub fn now_seconds() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970");
    i64::try_from(since.as_secs()).expect("seconds fit")
}
