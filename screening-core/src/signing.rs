//! Orders signed by the hub and verified by the gateway (Ed25519).
//!
//! A transport credential (a relay SAS key, a gateway's bearer credential) proves who may *talk*
//! to a gateway; the hub's signature proves an order *came from the hub, unchanged*. A leaked SAS
//! key, a proxy that rewrites traffic or a forged relay sender cannot make a gateway forward
//! anything: the agent checks the signature before it stores a message for forwarding.
//!
//! The signature covers the message id, type, destination, a SHA-256 digest of the payload and an
//! expiry, so none of them can be changed or replayed late. The digest is taken over the payload's
//! canonical form (JSON objects with their keys sorted), so hub and gateway agree whatever the
//! order of keys on the wire.
//!
//! Keys are standard: the private key is a PKCS#8 PEM file (`openssl genpkey -algorithm ed25519`
//! writes one, as does `screening-gateway signing-key generate`), the public key a SPKI PEM. A key's
//! id is derived from the public key, so a gateway can hold several keys (rotation) and a
//! signature can never name a key other than the one that made it.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::wire::GatewayMessage;

/// How long a signature stays valid after the hub hands a message out: long enough for a clock a
/// few minutes wrong and a slow network, short enough that a captured order cannot be replayed
/// tomorrow.
pub const SIGNATURE_LIFETIME: TimeDelta = TimeDelta::hours(1);

/// The domain-separation prefix of the signed bytes; a new layout gets a new prefix.
const SIGNED_PREFIX: &str = "screening-order-signature-v1";

/// The hub's signature on one message, in the wire field `signature`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSignature {
    /// The id of the key that signed ([`KeyId`]).
    pub key_id: String,
    /// After this instant the signature is refused.
    pub expires_at: DateTime<Utc>,
    /// The Ed25519 signature, base64 (standard alphabet, padded).
    pub value: String,
}

impl fmt::Debug for OrderSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrderSignature")
            .field("key_id", &self.key_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A key's id: `ed25519:` and the first 8 bytes of the SHA-256 of the raw public key, in hex.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(String);

impl KeyId {
    fn of(key: &VerifyingKey) -> Self {
        Self(format!(
            "ed25519:{}",
            hex(&Sha256::digest(key.as_bytes())[..8])
        ))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A key file could not be read as a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not a PKCS#8 Ed25519 private key in PEM.
    #[error("not an Ed25519 private key in PKCS#8 PEM (-----BEGIN PRIVATE KEY-----): {0}")]
    Private(String),
    /// Not a SPKI Ed25519 public key in PEM.
    #[error("not an Ed25519 public key in PEM (-----BEGIN PUBLIC KEY-----): {0}")]
    Public(String),
}

/// The hub's signing key. Its `Debug` shows the key id only.
#[derive(Clone)]
pub struct HubSigningKey {
    key: SigningKey,
    id: KeyId,
}

impl fmt::Debug for HubSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubSigningKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl HubSigningKey {
    /// The key made from 32 secret bytes (from the OS's random generator: the caller's job, as
    /// this crate does no I/O).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let key = SigningKey::from_bytes(&seed);
        let id = KeyId::of(&key.verifying_key());
        Self { key, id }
    }

    /// Reads a PKCS#8 PEM private key.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let key =
            SigningKey::from_pkcs8_pem(pem.trim()).map_err(|e| KeyError::Private(e.to_string()))?;
        let id = KeyId::of(&key.verifying_key());
        Ok(Self { key, id })
    }

    /// The private key as PKCS#8 PEM, to write to a file only its owner can read.
    pub fn to_pem(&self) -> String {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| pem.to_string())
            .expect("an Ed25519 key always encodes")
    }

    /// The key's id.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// The public half, for the gateways.
    pub fn public_key(&self) -> HubPublicKey {
        HubPublicKey::new(self.key.verifying_key())
    }

    /// Signs `message` (whose own `signature` is ignored), valid until `expires_at`.
    pub fn sign(&self, message: &GatewayMessage, expires_at: DateTime<Utc>) -> OrderSignature {
        let signed = signed_bytes(message, self.id.as_str(), expires_at);
        OrderSignature {
            key_id: self.id.to_string(),
            expires_at,
            value: base64::engine::general_purpose::STANDARD
                .encode(self.key.sign(&signed).to_bytes()),
        }
    }

    /// `message` with a signature valid for [`SIGNATURE_LIFETIME`] from `now`.
    pub fn signed(&self, mut message: GatewayMessage, now: DateTime<Utc>) -> GatewayMessage {
        message.signature = Some(self.sign(&message, now + SIGNATURE_LIFETIME));
        message
    }
}

/// One of the hub's public keys, as a gateway holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubPublicKey {
    key: VerifyingKey,
    id: KeyId,
}

impl HubPublicKey {
    fn new(key: VerifyingKey) -> Self {
        let id = KeyId::of(&key);
        Self { key, id }
    }

    /// Reads a SPKI PEM public key (`-----BEGIN PUBLIC KEY-----`).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        VerifyingKey::from_public_key_pem(pem.trim())
            .map(Self::new)
            .map_err(|e| KeyError::Public(e.to_string()))
    }

    /// The key as SPKI PEM.
    pub fn to_pem(&self) -> String {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .expect("an Ed25519 key always encodes")
    }

    /// The key's id, as signatures name it.
    pub fn id(&self) -> &KeyId {
        &self.id
    }
}

/// Why a gateway refuses a message. Each reads as "verify signature: …", the phase the hub and
/// the admin see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No signature, and this gateway requires one.
    #[error(
        "verify signature: the message is not signed and this gateway requires the hub's signature"
    )]
    Unsigned,
    /// Signed by a key this gateway does not hold (not yet added, or revoked).
    #[error("verify signature: signed by key {0}, which this gateway does not trust (not listed, or revoked)")]
    UnknownKey(String),
    /// The signature's time ran out.
    #[error("verify signature: the signature expired at {0}")]
    Expired(DateTime<Utc>),
    /// The signature does not match the message: forged, or altered on the way.
    #[error("verify signature: the signature does not match the message (forged, or altered in transit)")]
    Mismatch,
}

/// The hub's keys a gateway trusts, by key id, and whether it requires a signature at all.
#[derive(Debug, Clone, Default)]
pub struct TrustedHubKeys {
    keys: BTreeMap<KeyId, HubPublicKey>,
    required: bool,
}

impl TrustedHubKeys {
    /// Trusts `keys`; unsigned messages are refused when `required`.
    pub fn new(keys: impl IntoIterator<Item = HubPublicKey>, required: bool) -> Self {
        Self {
            keys: keys.into_iter().map(|key| (key.id.clone(), key)).collect(),
            required,
        }
    }

    /// True when an unsigned message is refused.
    pub fn required(&self) -> bool {
        self.required
    }

    /// The ids of the keys trusted.
    pub fn key_ids(&self) -> impl Iterator<Item = &KeyId> {
        self.keys.keys()
    }

    /// True when this gateway checks signatures at all: it holds a key or requires one. One that
    /// does neither accepts everything, so a hub can start signing before its gateways have keys.
    pub fn checks(&self) -> bool {
        self.required || !self.keys.is_empty()
    }

    /// Checks `message`'s signature at `now`. Once this gateway holds a key, a signed message is
    /// always checked, required or not: a bad signature is never "better than none".
    pub fn verify(
        &self,
        message: &GatewayMessage,
        now: DateTime<Utc>,
    ) -> Result<(), SignatureError> {
        if !self.checks() {
            return Ok(());
        }
        let Some(signature) = &message.signature else {
            return if self.required {
                Err(SignatureError::Unsigned)
            } else {
                Ok(())
            };
        };
        let key = self
            .keys
            .get(&KeyId(signature.key_id.clone()))
            .ok_or_else(|| {
                SignatureError::UnknownKey(signature.key_id.chars().take(80).collect())
            })?;
        let bytes: [u8; 64] = base64::engine::general_purpose::STANDARD
            .decode(&signature.value)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(SignatureError::Mismatch)?;
        let signed = signed_bytes(message, &signature.key_id, signature.expires_at);
        key.key
            .verify_strict(&signed, &ed25519_dalek::Signature::from_bytes(&bytes))
            .map_err(|_| SignatureError::Mismatch)?;
        // Checked after the signature, so an expiry that was moved reads as a mismatch.
        if now > signature.expires_at {
            return Err(SignatureError::Expired(signature.expires_at));
        }
        Ok(())
    }
}

/// The bytes signed: a prefix, then one field a line, the payload by digest.
fn signed_bytes(message: &GatewayMessage, key_id: &str, expires_at: DateTime<Utc>) -> Vec<u8> {
    format!(
        "{SIGNED_PREFIX}\n{}\n{}\n{}\n{:x}\n{}\n{key_id}",
        message.message_id,
        message.message_type,
        message.destination.as_str(),
        payload_digest(&message.payload),
        expires_at.timestamp(),
    )
    .into_bytes()
}

/// The SHA-256 of the payload's canonical form: a string payload as its bytes, a JSON payload
/// with every object's keys sorted. Serialised straight into the digest: every order the hub
/// hands out and every one a gateway checks goes through here, and a sorted copy of a FHIR
/// resource costs more than the signature itself.
fn payload_digest(payload: &serde_json::Value) -> impl fmt::LowerHex {
    let mut digest = Sha256::new();
    match payload {
        serde_json::Value::String(text) => digest.update(text.as_bytes()),
        other => serde_json::to_writer(&mut digest, &Canonical(other))
            .expect("serialising a JSON value into a digest cannot fail"),
    }
    digest.finalize()
}

/// A JSON value that serialises with every object's keys sorted, without copying it.
struct Canonical<'a>(&'a serde_json::Value);

impl Serialize for Canonical<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            serde_json::Value::Object(object) => {
                let mut entries: Vec<_> = object.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, &Canonical(value))?;
                }
                map.end()
            }
            serde_json::Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Canonical(item))?;
                }
                seq.end()
            }
            leaf => leaf.serialize(serializer),
        }
    }
}

/// Lowercase hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::Destination;
    use crate::ids::MessageId;
    use crate::message::MessageType;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_000_000, 0).unwrap()
    }

    fn key(n: u8) -> HubSigningKey {
        HubSigningKey::from_seed([n; 32])
    }

    fn order() -> GatewayMessage {
        GatewayMessage {
            message_id: MessageId::from_uuid(uuid::Uuid::from_u128(42)),
            message_type: MessageType::fhir(),
            payload: serde_json::json!({"resourceType": "ServiceRequest", "subject": {"identifier": {"value": "9990001235"}}}),
            destination: Destination::parse("https://ris.example.nhs.uk/orders").unwrap(),
            signature: None,
        }
    }

    fn trusting(keys: &[&HubSigningKey]) -> TrustedHubKeys {
        TrustedHubKeys::new(keys.iter().map(|k| k.public_key()), true)
    }

    #[test]
    fn the_payload_digest_is_taken_over_the_keys_sorted_at_every_depth() {
        let payload: serde_json::Value = serde_json::from_str(
            r#"{"subject":{"identifier":{"value":"9990001235","system":"https://fhir.nhs.uk/Id/nhs-number"}},
                "resourceType":"ServiceRequest","code":{"coding":[{"system":"http://snomed.info/sct","code":"24623002"},
                {"display":"Screening mammography","code":"x"}]},"note":[{"text":"\u00e9 \"quoted\""}],
                "priority":1.50,"status":"active","intent":"order","n":null,"b":true}"#,
        )
        .unwrap();
        // The canonical form as a sorted copy would write it: the digest must match it byte
        // for byte, or gateways and hubs of different versions disagree.
        let mut sorted = payload.clone();
        sorted.sort_all_objects();
        assert!(sorted
            .to_string()
            .starts_with(r#"{"b":true,"code":{"coding":[{"code":"24623002","#));
        let expected = hex(&Sha256::digest(sorted.to_string()));
        assert_eq!(format!("{:x}", payload_digest(&payload)), expected);
        let text = serde_json::Value::String("MSH|^~\\&|".into());
        assert_eq!(
            format!("{:x}", payload_digest(&text)),
            hex(&Sha256::digest("MSH|^~\\&|"))
        );
    }

    #[test]
    fn a_signed_order_verifies_with_the_hubs_public_key() {
        let hub = key(1);
        let signed = hub.signed(order(), now());
        assert_eq!(signed.signature.as_ref().unwrap().key_id, hub.id().as_str());
        assert_eq!(trusting(&[&hub]).verify(&signed, now()), Ok(()));
    }

    #[test]
    fn any_change_to_what_is_signed_is_a_mismatch() {
        let hub = key(1);
        let keys = trusting(&[&hub]);
        let signed = hub.signed(order(), now());
        let mut altered = Vec::new();
        let mut m = signed.clone();
        m.payload["subject"]["identifier"]["value"] = "9990001243".into();
        altered.push(m);
        let mut m = signed.clone();
        m.destination = Destination::parse("file:///tmp/exfiltrate").unwrap();
        altered.push(m);
        let mut m = signed.clone();
        m.message_type = MessageType::parse("HL7V2").unwrap();
        altered.push(m);
        let mut m = signed.clone();
        m.message_id = MessageId::from_uuid(uuid::Uuid::from_u128(43));
        altered.push(m);
        let mut m = signed.clone();
        m.signature.as_mut().unwrap().expires_at += TimeDelta::days(30);
        altered.push(m);
        let mut m = signed.clone();
        m.signature.as_mut().unwrap().value = "bm90IGEgc2lnbmF0dXJl".into();
        altered.push(m);
        for message in altered {
            assert_eq!(
                keys.verify(&message, now()),
                Err(SignatureError::Mismatch),
                "{message:?}"
            );
        }
    }

    #[test]
    fn the_order_of_json_keys_on_the_wire_does_not_matter() {
        let hub = key(1);
        let signed = hub.signed(order(), now());
        // The same object with its keys the other way round, as another serialiser may send it.
        let reordered: serde_json::Value = serde_json::from_str(
            r#"{"subject":{"identifier":{"value":"9990001235"}},"resourceType":"ServiceRequest"}"#,
        )
        .unwrap();
        let mut m = signed.clone();
        m.payload = reordered;
        assert_eq!(trusting(&[&hub]).verify(&m, now()), Ok(()));
    }

    #[test]
    fn an_expired_signature_is_refused() {
        let hub = key(1);
        let signed = hub.signed(order(), now());
        let later = now() + SIGNATURE_LIFETIME + TimeDelta::seconds(1);
        assert_eq!(
            trusting(&[&hub]).verify(&signed, later),
            Err(SignatureError::Expired(now() + SIGNATURE_LIFETIME))
        );
    }

    #[test]
    fn unsigned_is_refused_only_when_required_and_a_bad_signature_always() {
        let hub = key(1);
        let required = trusting(&[&hub]);
        assert_eq!(
            required.verify(&order(), now()),
            Err(SignatureError::Unsigned)
        );
        let optional = TrustedHubKeys::new([hub.public_key()], false);
        assert_eq!(optional.verify(&order(), now()), Ok(()));
        let forged = key(9).signed(order(), now());
        assert!(matches!(
            optional.verify(&forged, now()),
            Err(SignatureError::UnknownKey(_))
        ));
        // A gateway not yet given any key checks nothing, so the hub can start signing first.
        let unconfigured = TrustedHubKeys::default();
        assert!(!unconfigured.checks());
        assert_eq!(unconfigured.verify(&forged, now()), Ok(()));
    }

    #[test]
    fn rotation_trusts_old_and_new_together_and_revocation_removes_one() {
        let old = key(1);
        let new = key(2);
        let both = trusting(&[&old, &new]);
        assert_eq!(both.verify(&old.signed(order(), now()), now()), Ok(()));
        assert_eq!(both.verify(&new.signed(order(), now()), now()), Ok(()));
        let revoked = trusting(&[&new]);
        assert_eq!(
            revoked.verify(&old.signed(order(), now()), now()),
            Err(SignatureError::UnknownKey(old.id().to_string()))
        );
        assert_eq!(revoked.verify(&new.signed(order(), now()), now()), Ok(()));
    }

    #[test]
    fn a_signature_naming_a_trusted_key_it_was_not_made_with_is_a_mismatch() {
        let trusted = key(1);
        let attacker = key(9);
        let mut m = attacker.signed(order(), now());
        m.signature.as_mut().unwrap().key_id = trusted.id().to_string();
        assert_eq!(
            trusting(&[&trusted]).verify(&m, now()),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn keys_round_trip_through_pem_and_keep_their_id() {
        let hub = key(7);
        let private = hub.to_pem();
        assert!(private.starts_with("-----BEGIN PRIVATE KEY-----"));
        let again = HubSigningKey::from_pem(&private).unwrap();
        assert_eq!(again.id(), hub.id());
        let public = hub.public_key().to_pem();
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert_eq!(HubPublicKey::from_pem(&public).unwrap(), hub.public_key());
        assert!(matches!(
            HubSigningKey::from_pem(&public),
            Err(KeyError::Private(_))
        ));
        assert!(matches!(
            HubPublicKey::from_pem("not a key"),
            Err(KeyError::Public(_))
        ));
        assert!(hub.id().as_str().starts_with("ed25519:") && hub.id().as_str().len() == 24);
        assert!(!format!("{hub:?}").contains(&private[40..60]));
    }

    #[test]
    fn an_openssl_generated_key_is_read() {
        // `openssl genpkey -algorithm ed25519` (RFC 8410 test key shape).
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
        let key = HubSigningKey::from_pem(pem).unwrap();
        let signed = key.signed(order(), now());
        assert_eq!(
            TrustedHubKeys::new([key.public_key()], true).verify(&signed, now()),
            Ok(())
        );
    }

    #[test]
    fn the_wire_field_is_optional_and_old_messages_still_parse() {
        let json = r#"{"message_id":"67e55044-10b1-426f-9247-bb680e5fe0c8","type":"FHIR","payload":{},"destination":"log:"}"#;
        let message: GatewayMessage = serde_json::from_str(json).unwrap();
        assert!(message.signature.is_none());
        assert!(!serde_json::to_string(&message)
            .unwrap()
            .contains("signature"));
        let signed = key(1).signed(message, now());
        let back: GatewayMessage =
            serde_json::from_str(&serde_json::to_string(&signed).unwrap()).unwrap();
        assert_eq!(back, signed);
    }
}
