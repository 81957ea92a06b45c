//! NATS JWTs minted in the test (operator → account → user), the server config that trusts
//! them, and user `.creds` files: the decentralized auth of a real deployment, without
//! `nsc`. The format follows nats-io/jwt v2 (`claims.go`, `header.go`, `creds_utils.go`);
//! nats-server 2.15.1 accepts what this module writes.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nkeys::KeyPair;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512_256};

/// Seconds since the Unix epoch, the unit of every JWT time claim.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Signs `claims` as a NATS v2 JWT: `base64url(header).base64url(claims).base64url(sig)`,
/// unpadded, where the signature is the issuer's ed25519 signature of the first two parts
/// (v2 signs header and claims; v1 signed the claims only).
///
/// `iss`, `sub` and `iat` must already be in `claims`; `jti` is added here.
pub fn sign(issuer: &KeyPair, mut claims: Map<String, Value>) -> String {
    claims.insert("jti".into(), Value::String(jti(&claims)));
    // The decoder accepts typ "JWT" and alg "ed25519-nkey" (what v2 writes) or "ed25519"
    // (v1's) only, and nothing else.
    let header = json!({"typ": "JWT", "alg": "ed25519-nkey"});
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string())
    );
    let signature = issuer.sign(signed.as_bytes()).expect("sign JWT");
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// The claim id as nats-io/jwt computes it (`ClaimsData.hash`): SHA-512/256 (not SHA-256)
/// of the JSON of the standard claims with `jti` empty, base32 without padding. The server
/// does not recompute it; it is the claim's identity (nats-account-server's ETag).
/// Checked once against an independent implementation (Python's hashlib).
fn jti(claims: &Map<String, Value>) -> String {
    // Go marshals the struct fields aud, exp, (jti omitted), iat, iss, name, nbf, sub in
    // declaration order, which is also alphabetical: serde_json's sorted map agrees.
    let standard: Map<String, Value> = claims
        .iter()
        .filter(|(name, _)| {
            ["aud", "exp", "iat", "iss", "name", "nbf", "sub"].contains(&name.as_str())
        })
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let digest = Sha512_256::digest(Value::Object(standard).to_string().as_bytes());
    base32(&digest)
}

/// RFC 4648 base32, upper case, no padding (Go's `base32.StdEncoding.WithPadding(NoPadding)`).
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The claims every NATS JWT carries: who signed it (`iss`), whom it is about (`sub`),
/// when it was issued (`iat`, which revocations compare against), a `name` for the
/// server's log, and `nats.type` / `nats.version: 2` (without a version the decoder takes
/// it for a v1 token and verifies the signature over the claims alone).
fn base_claims(issuer: &KeyPair, subject: &str, kind: &str, issued_at: i64) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(issuer.public_key()));
    claims.insert("sub".into(), json!(subject));
    claims.insert("iat".into(), json!(issued_at));
    claims.insert("name".into(), json!(format!("kvop-test-{kind}")));
    claims.insert("nats".into(), json!({"type": kind, "version": 2}));
    claims
}

fn nats_section(claims: &mut Map<String, Value>) -> &mut Map<String, Value> {
    claims
        .get_mut("nats")
        .and_then(Value::as_object_mut)
        .expect("nats section")
}

/// An operator (self-signed trust root), a system account and one application account
/// with JetStream, ready to issue users.
pub struct Operator {
    pub operator: KeyPair,
    pub system: KeyPair,
    pub account: KeyPair,
    /// User public keys revoked in the account JWT, with the revocation time.
    pub revocations: Vec<(String, i64)>,
}

impl Operator {
    pub fn new() -> Operator {
        Operator {
            operator: KeyPair::new_operator(),
            system: KeyPair::new_account(),
            account: KeyPair::new_account(),
            revocations: Vec::new(),
        }
    }

    /// The operator JWT: self-signed (`iss == sub`), and naming the system account (the
    /// server warns "Trusted Operators should utilize a System Account" otherwise).
    fn operator_jwt(&self) -> String {
        let mut claims = base_claims(
            &self.operator,
            &self.operator.public_key(),
            "operator",
            now(),
        );
        nats_section(&mut claims).insert("system_account".into(), json!(self.system.public_key()));
        sign(&self.operator, claims)
    }

    /// An account JWT signed by the operator. An account has JetStream only when its
    /// limits give it memory or disk storage (nats-io/jwt `OperatorLimits.IsJSEnabled`);
    /// -1 means unlimited. `revocations` maps a user public key to a time: that user's
    /// JWTs issued at or before it are refused (the server compares with >=).
    fn account_jwt(
        &self,
        account: &KeyPair,
        jetstream: bool,
        revocations: &[(String, i64)],
    ) -> String {
        let mut claims = base_claims(&self.operator, &account.public_key(), "account", now());
        let nats = nats_section(&mut claims);
        let mut limits = json!({"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true, "conn": -1, "leaf": -1});
        if jetstream {
            let object = limits.as_object_mut().expect("object");
            object.insert("mem_storage".into(), json!(-1));
            object.insert("disk_storage".into(), json!(-1));
            object.insert("streams".into(), json!(-1));
            object.insert("consumer".into(), json!(-1));
        }
        nats.insert("limits".into(), limits);
        if !revocations.is_empty() {
            let list: Map<String, Value> = revocations
                .iter()
                .map(|(user, at)| (user.clone(), json!(at)))
                .collect();
            nats.insert("revocations".into(), Value::Object(list));
        }
        sign(&self.operator, claims)
    }

    /// A server config (no port or store dir: the test harness sets those) that trusts
    /// this operator and knows both accounts from memory: `resolver: MEMORY` with
    /// `resolver_preload` needs no account server and no resolver directory.
    pub fn server_config(&self) -> String {
        format!(
            "operator: {}\nsystem_account: {}\nresolver: MEMORY\nresolver_preload: {{\n  {}: {}\n  {}: {}\n}}\n",
            self.operator_jwt(),
            self.system.public_key(),
            self.system.public_key(),
            self.account_jwt(&self.system, false, &[]),
            self.account.public_key(),
            self.account_jwt(&self.account, true, &self.revocations),
        )
    }

    /// A user JWT of the application account, allowed everything. With `expires` (`exp`)
    /// the server refuses to connect it afterwards, and closes its connection then.
    pub fn user(&self, user: &KeyPair, issued_at: i64, expires: Option<i64>) -> String {
        let mut claims = base_claims(&self.account, &user.public_key(), "user", issued_at);
        if let Some(expires) = expires {
            claims.insert("exp".into(), json!(expires));
        }
        let nats = nats_section(&mut claims);
        // nats-io/jwt's NewUserClaims default: no subscription, data or payload limits.
        nats.insert("subs".into(), json!(-1));
        nats.insert("data".into(), json!(-1));
        nats.insert("payload".into(), json!(-1));
        sign(&self.account, claims)
    }
}

/// A `.creds` file's content, byte for byte what `nsc` writes (`FormatUserConfig`): the
/// decorated user JWT, then the decorated seed. Clients find both by the dashed lines.
pub fn creds(jwt: &str, user: &KeyPair) -> String {
    let seed = user.seed().expect("user seed");
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    )
}
