//! Shared Access Signature tokens for Azure Relay: creating them as the official clients do, and
//! validating them as the service does (as the Azure Relay Hybrid Connections protocol guide describes).
//!
//! Token: `SharedAccessSignature sr=<enc(resource)>&sig=<enc(base64(HMAC))>&se=<unix>&skn=<key name>`,
//! fields in any order. The signature is HMAC-SHA256, keyed with the UTF-8 bytes of the key *as
//! written* (the base64-looking key is not decoded), over `enc(resource) + "\n" + se`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

const PREFIX: &str = "SharedAccessSignature ";

/// What a SAS rule allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Right {
    /// Open a listener control channel (`sb-hc-action=listen`).
    Listen,
    /// Connect as a sender (`sb-hc-action=connect`) or send HTTP requests.
    Send,
    /// Everything (includes Listen and Send).
    Manage,
}

/// A namespace's shared access rule: a key name, its key, and its rights.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SasRule {
    /// The key name (`skn`), e.g. `RootManageSharedAccessKey`.
    pub key_name: String,
    /// The key, used as text.
    pub key: String,
    /// What tokens signed with it may do.
    pub rights: Vec<Right>,
}

impl std::fmt::Debug for SasRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SasRule")
            .field("key_name", &self.key_name)
            .field("rights", &self.rights)
            .finish_non_exhaustive()
    }
}

impl SasRule {
    fn allows(&self, right: Right) -> bool {
        self.rights.contains(&right) || self.rights.contains(&Right::Manage)
    }
}

/// Why a token was refused. `status()` gives the HTTP status the relay answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SasError {
    /// Not a SAS token, or a field is missing or malformed.
    #[error("the token is malformed: {0}")]
    Malformed(String),
    /// No rule has the token's key name.
    #[error("the token's key name {0:?} is not a rule of this namespace")]
    UnknownKeyName(String),
    /// The signature does not match.
    #[error("the token has an invalid signature")]
    InvalidSignature,
    /// `se` is in the past.
    #[error("the token expired at {0} (unix seconds)")]
    Expired(u64),
    /// The token was signed for another resource.
    #[error("the token is not valid for this path")]
    WrongResource,
    /// The rule lacks the right the action needs.
    #[error("the token's rule does not have the {0:?} right")]
    MissingRight(Right),
}

impl SasError {
    /// 401 for a missing, malformed, invalid or expired token; 403 when it is valid but not for this
    /// path or action.
    pub fn status(&self) -> u16 {
        match self {
            SasError::WrongResource | SasError::MissingRight(_) => 403,
            _ => 401,
        }
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, with upper-case hex, as .NET does.
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (either case) and `+` as a space.
pub fn url_decode(text: &str) -> Result<String, SasError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| SasError::Malformed(format!("bad escape in {text:?}")))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| SasError::Malformed("not UTF-8 once decoded".into()))
}

fn signature(encoded_resource: &str, expiry: &str, key: &str) -> Vec<u8> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(encoded_resource.as_bytes());
    mac.update(b"\n");
    mac.update(expiry.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The resource URI the .NET client signs for a hybrid connection: `http://{namespace}/{path}/`
/// (scheme http, no port, lower-case host, trailing slash).
pub fn resource_uri(namespace: &str, path: &str) -> String {
    let host = namespace
        .split(':')
        .next()
        .unwrap_or(namespace)
        .to_ascii_lowercase();
    format!("http://{host}/{}/", path.trim_matches('/'))
}

/// Creates a token for `resource` (as returned by [`resource_uri`]) that expires at `expires_at`
/// (unix seconds).
pub fn create_token(resource: &str, key_name: &str, key: &str, expires_at: u64) -> String {
    use base64::Engine;
    let encoded_resource = url_encode(resource);
    let expiry = expires_at.to_string();
    let sig = base64::engine::general_purpose::STANDARD.encode(signature(
        &encoded_resource,
        &expiry,
        key,
    ));
    format!(
        "{PREFIX}sr={encoded_resource}&sig={}&se={expiry}&skn={}",
        url_encode(&sig),
        url_encode(key_name)
    )
}

/// A token's fields, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// `sr` exactly as received (still encoded; the signature covers this form).
    pub encoded_resource: String,
    /// The decoded signature bytes.
    pub signature: Vec<u8>,
    /// `se` exactly as received.
    pub expiry_text: String,
    /// `se` as a number.
    pub expires_at: u64,
    /// The decoded key name.
    pub key_name: String,
}

/// Reads a token's fields (in any order).
pub fn parse_token(token: &str) -> Result<Token, SasError> {
    use base64::Engine;
    let body = token.trim().strip_prefix(PREFIX).ok_or_else(|| {
        SasError::Malformed("it does not start with SharedAccessSignature".into())
    })?;
    let (mut sr, mut sig, mut se, mut skn) = (None, None, None, None);
    for field in body.split('&') {
        let (name, value) = field
            .split_once('=')
            .ok_or_else(|| SasError::Malformed(format!("field {field:?} has no value")))?;
        match name {
            "sr" => sr = Some(value.to_string()),
            "sig" => sig = Some(value.to_string()),
            "se" => se = Some(value.to_string()),
            "skn" => skn = Some(value.to_string()),
            _ => {}
        }
    }
    let missing = |name: &str| SasError::Malformed(format!("the {name} field is missing"));
    let encoded_resource = sr.ok_or_else(|| missing("sr"))?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(url_decode(&sig.ok_or_else(|| missing("sig"))?)?)
        .map_err(|_| SasError::Malformed("sig is not base64".into()))?;
    let expiry_text = se.ok_or_else(|| missing("se"))?;
    let expires_at = expiry_text
        .parse()
        .map_err(|_| SasError::Malformed(format!("se {expiry_text:?} is not unix seconds")))?;
    let key_name = url_decode(&skn.ok_or_else(|| missing("skn"))?)?;
    Ok(Token {
        encoded_resource,
        signature,
        expiry_text,
        expires_at,
        key_name,
    })
}

/// Host and path of a resource URI, ignoring scheme and port: `("contoso.servicebus.windows.net", "/hyco")`.
fn host_and_path(uri: &str) -> (String, String) {
    let rest = uri.split_once("://").map(|(_, rest)| rest).unwrap_or(uri);
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let host = authority
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    (host, path.trim_end_matches('/').to_string())
}

/// Validates a token for an action on `host`/`path` (the hybrid connection), at `now` (unix
/// seconds). Accepts .NET-, Node- and Java-style resource URIs.
pub fn validate_token(
    token: &str,
    rules: &[SasRule],
    host: &str,
    path: &str,
    needed: Right,
    now: u64,
) -> Result<(), SasError> {
    let token = parse_token(token)?;
    let rule = rules
        .iter()
        .find(|rule| rule.key_name == token.key_name)
        .ok_or_else(|| SasError::UnknownKeyName(token.key_name.clone()))?;
    let expected = signature(&token.encoded_resource, &token.expiry_text, &rule.key);
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        expected.as_slice(),
        token.signature.as_slice(),
    )) {
        return Err(SasError::InvalidSignature);
    }
    if token.expires_at <= now {
        return Err(SasError::Expired(token.expires_at));
    }
    let (signed_host, signed_path) = host_and_path(&url_decode(&token.encoded_resource)?);
    let target_host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
    let target_path = format!("/{}", path.trim_matches('/'));
    // Valid for the resource and everything below it, segment by segment.
    let path_ok = signed_path.is_empty()
        || target_path == signed_path
        || target_path.starts_with(&format!("{signed_path}/"));
    if signed_host != target_host || !path_ok {
        return Err(SasError::WrongResource);
    }
    if !rule.allows(needed) {
        return Err(SasError::MissingRight(needed));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    const SKN: &str = "RootManageSharedAccessKey";
    const HOST: &str = "contoso.servicebus.windows.net";

    fn rule(rights: Vec<Right>) -> Vec<SasRule> {
        vec![SasRule {
            key_name: SKN.into(),
            key: KEY.into(),
            rights,
        }]
    }

    /// Published SAS test vectors (the project notes beside this repository, `shared/relay-protocol.md` §4).
    const VECTORS: [(&str, &str); 3] = [
        (
            "http%3A%2F%2Fcontoso.servicebus.windows.net%2Fhyco%2F",
            "sPCtCmn3D5R3PkH9ThceyuLjcS8t7S3QlN62AYUoIjo=",
        ),
        (
            "http%3a%2f%2fcontoso.servicebus.windows.net%2fhyco%2f",
            "FhuW2kw65o8lrISraK4YKg6ADm1joTPVQs0O0s9gtnI=",
        ),
        (
            "http%3A%2F%2Fcontoso.servicebus.windows.net%3A443%2Fhyco",
            "yzhJC+tx1ZFctZc9FPet+skLuKtQ8h5DMT0+O+U+MyM=",
        ),
    ];

    #[test]
    fn signatures_match_the_published_test_vectors() {
        use base64::Engine;
        for (resource, expected) in VECTORS {
            let sig = base64::engine::general_purpose::STANDARD.encode(signature(
                resource,
                "1700000000",
                KEY,
            ));
            assert_eq!(sig, expected, "{resource}");
        }
    }

    #[test]
    fn create_token_produces_the_published_full_token() {
        let token = create_token(&resource_uri(HOST, "hyco"), SKN, KEY, 1_700_000_000);
        assert_eq!(
            token,
            "SharedAccessSignature sr=http%3A%2F%2Fcontoso.servicebus.windows.net%2Fhyco%2F&sig=sPCtCmn3D5R3PkH9ThceyuLjcS8t7S3QlN62AYUoIjo%3D&se=1700000000&skn=RootManageSharedAccessKey"
        );
    }

    #[test]
    fn tokens_in_each_clients_style_validate() {
        for (resource, sig) in VECTORS {
            let token = format!(
                "SharedAccessSignature skn={SKN}&se=1700000000&sr={resource}&sig={}",
                url_encode(sig)
            );
            assert_eq!(
                validate_token(
                    &token,
                    &rule(vec![Right::Listen]),
                    HOST,
                    "hyco",
                    Right::Listen,
                    1_600_000_000
                ),
                Ok(()),
                "{resource}"
            );
        }
        let java = create_token(
            "sb://contoso.servicebus.windows.net/hyco",
            SKN,
            KEY,
            1_700_000_000,
        );
        assert_eq!(
            validate_token(
                &java,
                &rule(vec![Right::Send]),
                "Contoso.ServiceBus.Windows.Net:443",
                "/hyco/",
                Right::Send,
                0
            ),
            Ok(())
        );
    }

    #[test]
    fn refusals_have_the_right_reason_and_status() {
        let token = create_token(&resource_uri(HOST, "hyco"), SKN, KEY, 1_700_000_000);
        let listen = rule(vec![Right::Listen]);
        let expired = validate_token(&token, &listen, HOST, "hyco", Right::Listen, 1_700_000_000)
            .unwrap_err();
        assert_eq!(
            (expired.status(), expired.clone()),
            (401, SasError::Expired(1_700_000_000))
        );
        let other_path =
            validate_token(&token, &listen, HOST, "hycox", Right::Listen, 0).unwrap_err();
        assert_eq!(
            (other_path.status(), other_path),
            (403, SasError::WrongResource)
        );
        assert_eq!(
            validate_token(&token, &listen, HOST, "hyco/suffix", Right::Listen, 0),
            Ok(()),
            "below the resource"
        );
        let send = validate_token(&token, &listen, HOST, "hyco", Right::Send, 0).unwrap_err();
        assert_eq!(
            (send.status(), send),
            (403, SasError::MissingRight(Right::Send))
        );
        let wrong_key = vec![SasRule {
            key_name: SKN.into(),
            key: "another".into(),
            rights: vec![Right::Manage],
        }];
        assert_eq!(
            validate_token(&token, &wrong_key, HOST, "hyco", Right::Listen, 0),
            Err(SasError::InvalidSignature)
        );
        assert!(matches!(
            validate_token("Bearer x", &listen, HOST, "hyco", Right::Listen, 0),
            Err(SasError::Malformed(_))
        ));
        let unknown = create_token(&resource_uri(HOST, "hyco"), "other", KEY, 1_700_000_000);
        assert!(matches!(
            validate_token(&unknown, &listen, HOST, "hyco", Right::Listen, 0),
            Err(SasError::UnknownKeyName(_))
        ));
    }

    #[test]
    fn a_tampered_expiry_breaks_the_signature() {
        let token = create_token(&resource_uri(HOST, "hyco"), SKN, KEY, 1_700_000_000)
            .replace("se=1700000000", "se=1800000000");
        assert_eq!(
            validate_token(
                &token,
                &rule(vec![Right::Manage]),
                HOST,
                "hyco",
                Right::Listen,
                0
            ),
            Err(SasError::InvalidSignature)
        );
    }
}
