//! Verifying the HTTP signatures on requests other servers send us: draft-cavage
//! (`Signature:` with `keyId`, `rsa-sha256` or `hs2019`), as Mastodon and most servers
//! sign, and RFC 9421 (`Signature-Input:` and `Signature:`), as Fedify signs first and
//! Mastodon accepts since 4.5.
//!
//! The rules follow Mastodon's: the request target, host and date (or `created`) must be
//! signed, and a POST's body digest too, matching the body; the signature must have been
//! made no more than an hour in the future and expire (by default five minutes after it
//! was made) no more than an hour ago.

use actix_web::http::header::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Duration, Utc};
use rsa::RsaPublicKey;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use sha2::{Digest, Sha256, Sha512};

/// How far in the future a signature may claim to have been made.
const CLOCK_SKEW: Duration = Duration::hours(1);
/// How long a signature lasts when it does not say.
const DEFAULT_LIFETIME: Duration = Duration::minutes(5);
/// The longest life a signature may claim.
const MAX_LIFETIME: Duration = Duration::hours(12);

/// Why a request's signature is not accepted. Every case answers 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No signature headers at all.
    #[error("the request is not signed")]
    Unsigned,
    /// The signature headers could not be read.
    #[error("malformed signature: {0}")]
    Malformed(String),
    /// Something that must be signed was not.
    #[error("the signature does not cover {0}")]
    NotCovered(&'static str),
    /// A signed header was missing from the request.
    #[error("signed header {0} is missing")]
    MissingHeader(String),
    /// The date is outside the accepted window.
    #[error("signature date outside the accepted window: {0}")]
    Expired(String),
    /// The body does not match its digest.
    #[error("the body does not match its digest")]
    DigestMismatch,
    /// The algorithm is not one we verify.
    #[error("unsupported signature algorithm {0}")]
    Unsupported(String),
    /// The key could not be read.
    #[error("the public key cannot be read")]
    BadKey,
    /// The signature does not verify with the key.
    #[error("the signature does not verify")]
    Invalid,
}

/// The parts of a received request a signature can cover.
pub struct SignedRequest<'a> {
    /// `GET`, `POST`.
    pub method: &'a str,
    /// The path and query as received.
    pub path_and_query: &'a str,
    /// `https` or `http`: how clients reach us (the public URL's scheme, since a proxy
    /// may end TLS).
    pub scheme: &'a str,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The body.
    pub body: &'a [u8],
}

/// A parsed signature, checked for everything but the key: what it covers, its dates
/// and the body digest.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The key the signer names (`https://server/users/x#main-key`).
    pub key_id: String,
    message: String,
    signature: Vec<u8>,
    algorithm: Algorithm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RsaSha256,
    /// `hs2019` or no algorithm named: decided by the key (PKCS1-v1_5 SHA-256 first, as
    /// Mastodon signs, then PSS SHA-512).
    FromKey,
    /// RSASSA-PSS with SHA-512.
    RsaPssSha512,
}

impl Claim {
    /// Checks the signature against the signer's public key (PEM, SPKI or PKCS#1).
    /// The key is read with `rsa`; the arithmetic is `ring`'s, several times faster.
    pub fn verify(&self, public_key_pem: &str) -> Result<(), SignatureError> {
        use ring::signature::{self, RsaPublicKeyComponents};
        use rsa::traits::PublicKeyParts;

        let key = RsaPublicKey::from_public_key_pem(public_key_pem.trim())
            .or_else(|_| RsaPublicKey::from_pkcs1_pem(public_key_pem.trim()))
            .map_err(|_| SignatureError::BadKey)?;
        let key = RsaPublicKeyComponents {
            n: key.n().to_bytes_be(),
            e: key.e().to_bytes_be(),
        };
        let with = |algorithm| {
            key.verify(algorithm, self.message.as_bytes(), &self.signature)
                .map_err(|_| SignatureError::Invalid)
        };
        // Keys of 1,024 bits still sign for some old servers, as Mastodon accepts.
        let pkcs1 = || with(&signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY);
        let pss = || with(&signature::RSA_PSS_2048_8192_SHA512);
        match self.algorithm {
            Algorithm::RsaSha256 => pkcs1(),
            Algorithm::RsaPssSha512 => pss(),
            Algorithm::FromKey => pkcs1().or_else(|_| pss()),
        }
    }
}

/// Reads and checks a request's signature (either kind), short of the key.
pub fn parse(request: &SignedRequest<'_>, now: DateTime<Utc>) -> Result<Claim, SignatureError> {
    if request.headers.contains_key("signature-input") {
        rfc9421(request, now)
    } else if let Some(value) = header(request.headers, "signature") {
        cavage(request, &value, now)
    } else if let Some(value) = header(request.headers, "authorization")
        .and_then(|v| v.strip_prefix("Signature ").map(str::to_owned))
    {
        cavage(request, &value, now)
    } else {
        Err(SignatureError::Unsigned)
    }
}

/// A header's values joined as HTTP combines them.
fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// `keyId="x",headers="a b"` into pairs; commas inside quotes are kept.
fn cavage_params(value: &str) -> Result<Vec<(String, String)>, SignatureError> {
    let mut params = Vec::new();
    let mut rest = value.trim();
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once('=')
            .ok_or_else(|| SignatureError::Malformed("expected key=value".into()))?;
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted
                .find('"')
                .ok_or_else(|| SignatureError::Malformed("unterminated quote".into()))?;
            (quoted[..end].to_owned(), &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        params.push((key, value));
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    Ok(params)
}

fn cavage(
    request: &SignedRequest<'_>,
    value: &str,
    now: DateTime<Utc>,
) -> Result<Claim, SignatureError> {
    let params = cavage_params(value)?;
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let key_id = param("keyid").ok_or_else(|| SignatureError::Malformed("no keyId".into()))?;
    let signature = BASE64
        .decode(param("signature").ok_or_else(|| SignatureError::Malformed("no signature".into()))?)
        .map_err(|_| SignatureError::Malformed("signature is not base64".into()))?;
    let algorithm = match param("algorithm")
        .map(|a| a.to_ascii_lowercase())
        .as_deref()
    {
        Some("rsa-sha256") => Algorithm::RsaSha256,
        Some("hs2019") | None => Algorithm::FromKey,
        Some(other) => return Err(SignatureError::Unsupported(other.to_owned())),
    };
    let covered: Vec<String> = param("headers")
        .unwrap_or_else(|| "date".into())
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    let covers = |name: &str| covered.iter().any(|c| c == name);
    let post = request.method.eq_ignore_ascii_case("POST");
    // Mastodon's rules: the request target or the body's digest, and the host on a GET
    // (a POST is bound to its body by the digest, which it must sign).
    if !covers("(request-target)") && !covers("digest") {
        return Err(SignatureError::NotCovered("(request-target)"));
    }
    if !post && !covers("host") {
        return Err(SignatureError::NotCovered("host"));
    }
    let created = parse_unix(param("created").as_deref())?;
    let expires = parse_unix(param("expires").as_deref())?;
    let date = if covers("date") {
        Some(http_date(request.headers)?)
    } else if covers("(created)") {
        None
    } else {
        return Err(SignatureError::NotCovered("date"));
    };
    check_window(date.or(created), expires, now)?;
    if post {
        if !covers("digest") {
            return Err(SignatureError::NotCovered("digest"));
        }
        check_digest(request)?;
    }
    let mut lines = Vec::with_capacity(covered.len());
    for name in &covered {
        let line = match name.as_str() {
            "(request-target)" => format!(
                "(request-target): {} {}",
                request.method.to_ascii_lowercase(),
                request.path_and_query
            ),
            "(created)" => format!(
                "(created): {}",
                param("created").ok_or(SignatureError::MissingHeader("(created)".into()))?
            ),
            "(expires)" => format!(
                "(expires): {}",
                param("expires").ok_or(SignatureError::MissingHeader("(expires)".into()))?
            ),
            field => format!(
                "{field}: {}",
                header(request.headers, field)
                    .ok_or_else(|| SignatureError::MissingHeader(field.to_owned()))?
            ),
        };
        lines.push(line);
    }
    Ok(Claim {
        key_id,
        message: lines.join("\n"),
        signature,
        algorithm,
    })
}

fn parse_unix(value: Option<&str>) -> Result<Option<DateTime<Utc>>, SignatureError> {
    value
        .map(|v| {
            let seconds: f64 = v
                .trim()
                .parse()
                .map_err(|_| SignatureError::Malformed(format!("bad timestamp {v}")))?;
            // Whole seconds are what every signer sends; fractions are dropped.
            #[allow(clippy::cast_possible_truncation)]
            DateTime::from_timestamp(seconds as i64, 0)
                .ok_or_else(|| SignatureError::Malformed(format!("bad timestamp {v}")))
        })
        .transpose()
}

fn http_date(headers: &HeaderMap) -> Result<DateTime<Utc>, SignatureError> {
    let text =
        header(headers, "date").ok_or_else(|| SignatureError::MissingHeader("date".into()))?;
    DateTime::parse_from_rfc2822(&text)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| SignatureError::Malformed(format!("bad Date {text}")))
}

/// Mastodon's window: made at most an hour ahead of us; expired (by default five minutes
/// after it was made, at most twelve hours) no more than an hour ago.
fn check_window(
    created: Option<DateTime<Utc>>,
    expires: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    // Timestamps come from the sender and may sit at the ends of time: saturate rather
    // than overflow.
    let plus =
        |t: DateTime<Utc>, d: Duration| t.checked_add_signed(d).unwrap_or(DateTime::<Utc>::MAX_UTC);
    if let Some(created) = created {
        if created > plus(now, CLOCK_SKEW) {
            return Err(SignatureError::Expired(format!(
                "made in the future ({created})"
            )));
        }
        let expires = expires
            .unwrap_or(plus(created, DEFAULT_LIFETIME))
            .min(plus(created, MAX_LIFETIME));
        if now > plus(expires, CLOCK_SKEW) {
            return Err(SignatureError::Expired(format!("expired at {expires}")));
        }
    } else if let Some(expires) = expires
        && now > plus(expires, CLOCK_SKEW)
    {
        return Err(SignatureError::Expired(format!("expired at {expires}")));
    }
    Ok(())
}

/// `Digest: SHA-256=<base64>` (or SHA-512) must match the body.
fn check_digest(request: &SignedRequest<'_>) -> Result<(), SignatureError> {
    let value = header(request.headers, "digest")
        .ok_or_else(|| SignatureError::MissingHeader("digest".into()))?;
    let mut checked = false;
    for part in value.split(',') {
        let Some((algorithm, encoded)) = part.trim().split_once('=') else {
            continue;
        };
        let expected = match algorithm.to_ascii_lowercase().as_str() {
            "sha-256" => BASE64.encode(Sha256::digest(request.body)),
            "sha-512" => BASE64.encode(Sha512::digest(request.body)),
            _ => continue,
        };
        if encoded.trim() != expected {
            return Err(SignatureError::DigestMismatch);
        }
        checked = true;
    }
    if checked {
        Ok(())
    } else {
        Err(SignatureError::Unsupported("digest algorithm".into()))
    }
}

/// `Content-Digest: sha-256=:<base64>:` (RFC 9530) must match the body.
fn check_content_digest(request: &SignedRequest<'_>) -> Result<(), SignatureError> {
    let value = header(request.headers, "content-digest")
        .ok_or_else(|| SignatureError::MissingHeader("content-digest".into()))?;
    let dictionary: sfv::Dictionary = sfv::Parser::new(&value)
        .parse()
        .map_err(|e| SignatureError::Malformed(format!("Content-Digest: {e}")))?;
    let mut checked = false;
    for (algorithm, entry) in &dictionary {
        let sfv::ListEntry::Item(item) = entry else {
            continue;
        };
        let Some(bytes) = item.bare_item.as_byte_sequence() else {
            continue;
        };
        let expected: Vec<u8> = match algorithm.as_str() {
            "sha-256" => Sha256::digest(request.body).to_vec(),
            "sha-512" => Sha512::digest(request.body).to_vec(),
            _ => continue,
        };
        if bytes != expected.as_slice() {
            return Err(SignatureError::DigestMismatch);
        }
        checked = true;
    }
    if checked {
        Ok(())
    } else {
        Err(SignatureError::Unsupported(
            "content digest algorithm".into(),
        ))
    }
}

fn rfc9421(request: &SignedRequest<'_>, now: DateTime<Utc>) -> Result<Claim, SignatureError> {
    let malformed = |what: &str| SignatureError::Malformed(what.to_owned());
    let inputs_text = header(request.headers, "signature-input").ok_or(SignatureError::Unsigned)?;
    let signatures_text = header(request.headers, "signature").ok_or(SignatureError::Unsigned)?;
    let inputs: sfv::Dictionary = sfv::Parser::new(&inputs_text)
        .parse()
        .map_err(|e| SignatureError::Malformed(format!("Signature-Input: {e}")))?;
    let signatures: sfv::Dictionary = sfv::Parser::new(&signatures_text)
        .parse()
        .map_err(|e| SignatureError::Malformed(format!("Signature: {e}")))?;
    // The first signature that names a key is the one we check.
    let (label, inner) = inputs
        .iter()
        .find_map(|(label, entry)| match entry {
            sfv::ListEntry::InnerList(inner) if inner.params.contains_key("keyid") => {
                Some((label, inner))
            }
            _ => None,
        })
        .ok_or_else(|| malformed("no signature names a keyid"))?;
    let signature = match signatures.get(label) {
        Some(sfv::ListEntry::Item(item)) => item
            .bare_item
            .as_byte_sequence()
            .ok_or_else(|| malformed("signature is not a byte sequence"))?
            .to_vec(),
        _ => return Err(malformed("no signature for the signature input")),
    };
    let param_string = |name: &str| {
        inner
            .params
            .get(name)
            .and_then(|v| v.as_string().map(|s| s.as_str().to_owned()))
    };
    let param_int = |name: &str| {
        inner
            .params
            .get(name)
            .and_then(sfv::BareItem::as_integer)
            .map(i64::from)
    };
    let key_id = param_string("keyid").ok_or_else(|| malformed("keyid is not a string"))?;
    let algorithm = match param_string("alg").as_deref() {
        Some("rsa-v1_5-sha256") => Algorithm::RsaSha256,
        Some("rsa-pss-sha512") => Algorithm::RsaPssSha512,
        None => Algorithm::FromKey,
        Some(other) => return Err(SignatureError::Unsupported(other.to_owned())),
    };
    let created = param_int("created")
        .map(|s| DateTime::from_timestamp(s, 0).ok_or_else(|| malformed("bad created")))
        .transpose()?
        .ok_or(SignatureError::NotCovered("created"))?;
    let expires = param_int("expires")
        .map(|s| DateTime::from_timestamp(s, 0).ok_or_else(|| malformed("bad expires")))
        .transpose()?;
    check_window(Some(created), expires, now)?;

    let mut components = Vec::with_capacity(inner.items.len());
    for item in &inner.items {
        if !item.params.is_empty() {
            return Err(SignatureError::Unsupported("component parameters".into()));
        }
        let name = item
            .bare_item
            .as_string()
            .ok_or_else(|| malformed("component names must be strings"))?
            .as_str()
            .to_owned();
        components.push(name);
    }
    let covers = |name: &str| components.iter().any(|c| c == name);
    if !covers("@method") {
        return Err(SignatureError::NotCovered("@method"));
    }
    if !(covers("@target-uri")
        || (covers("@authority") && (covers("@path") || covers("@request-target"))))
    {
        return Err(SignatureError::NotCovered("@target-uri"));
    }
    if request.method.eq_ignore_ascii_case("POST") {
        if !covers("content-digest") {
            return Err(SignatureError::NotCovered("content-digest"));
        }
        check_content_digest(request)?;
    }
    let authority = header(request.headers, "host")
        .ok_or_else(|| SignatureError::MissingHeader("host".into()))?
        .to_ascii_lowercase();
    let (path, query) = match request.path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (request.path_and_query, None),
    };
    let mut base = String::new();
    for name in &components {
        let value = match name.as_str() {
            "@method" => request.method.to_ascii_uppercase(),
            "@target-uri" => format!("{}://{authority}{}", request.scheme, request.path_and_query),
            "@authority" => authority.clone(),
            "@scheme" => request.scheme.to_owned(),
            "@request-target" => request.path_and_query.to_owned(),
            "@path" => path.to_owned(),
            "@query" => format!("?{}", query.unwrap_or("")),
            derived if derived.starts_with('@') => {
                return Err(SignatureError::Unsupported(derived.to_owned()));
            }
            field => header(request.headers, field)
                .ok_or_else(|| SignatureError::MissingHeader(field.to_owned()))?,
        };
        base.push_str(&format!("\"{name}\": {value}\n"));
    }
    let params = sfv::FieldType::serialize(&vec![sfv::ListEntry::InnerList(inner.clone())])
        .ok_or_else(|| malformed("cannot serialise the signature parameters"))?;
    base.push_str(&format!("\"@signature-params\": {params}"));
    Ok(Claim {
        key_id,
        message: base,
        signature,
        algorithm,
    })
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};

    use super::*;

    fn key() -> (rsa::RsaPrivateKey, String) {
        let mut rng = rand_core_06::OsRng;
        // 2048 bits: PSS with SHA-512 needs room for a 64-byte salt.
        let private = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("key");
        let public = private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("pem");
        (private, public)
    }

    fn headers(pairs: &[(&str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        map
    }

    fn sign_pkcs1(private: &rsa::RsaPrivateKey, message: &str) -> String {
        let key = rsa::pkcs1v15::SigningKey::<Sha256>::new(private.clone());
        BASE64.encode(key.sign(message.as_bytes()).to_bytes())
    }

    #[test]
    fn cavage_round_trip_and_tampering() {
        let (private, public) = key();
        let body = br#"{"type":"Follow"}"#;
        let now = Utc::now();
        let date = now.to_rfc2822().replace("+0000", "GMT");
        let digest = format!("SHA-256={}", BASE64.encode(Sha256::digest(body)));
        let message = format!(
            "(request-target): post /inbox\nhost: blogs.example\ndate: {date}\ndigest: {digest}"
        );
        let signature = sign_pkcs1(&private, &message);
        let make = |sig: &str, digest: &str, date: &str| {
            headers(&[
                ("host", "blogs.example".into()),
                ("date", date.into()),
                ("digest", digest.into()),
                (
                    "signature",
                    format!(
                        r#"keyId="https://m.example/users/a#main-key",algorithm="rsa-sha256",headers="(request-target) host date digest",signature="{sig}""#
                    ),
                ),
            ])
        };
        let request = |headers: &HeaderMap, body: &'static [u8]| -> Result<Claim, SignatureError> {
            parse(
                &SignedRequest {
                    method: "POST",
                    path_and_query: "/inbox",
                    scheme: "https",
                    headers,
                    body,
                },
                now,
            )
        };
        let good = make(&signature, &digest, &date);
        let claim = request(&good, body).expect("parses");
        assert_eq!(claim.key_id, "https://m.example/users/a#main-key");
        claim.verify(&public).expect("verifies");
        assert_eq!(
            request(&good, b"{}").err(),
            Some(SignatureError::DigestMismatch)
        );
        let other = make(
            &signature,
            &format!("SHA-256={}", BASE64.encode(Sha256::digest(b"x"))),
            &date,
        );
        assert_eq!(
            request(&other, b"x").expect("parses").verify(&public),
            Err(SignatureError::Invalid)
        );
        let stale = (now - Duration::hours(3)).to_rfc2822();
        assert!(matches!(
            request(&make(&signature, &digest, &stale), body),
            Err(SignatureError::Expired(_))
        ));
        assert!(matches!(
            request(&HeaderMap::new(), body),
            Err(SignatureError::Unsigned)
        ));
    }

    #[test]
    fn window_follows_mastodon() {
        let now = Utc::now();
        assert!(check_window(Some(now - Duration::minutes(64)), None, now).is_ok());
        assert!(check_window(Some(now - Duration::minutes(66)), None, now).is_err());
        assert!(check_window(Some(now + Duration::minutes(59)), None, now).is_ok());
        assert!(check_window(Some(now + Duration::minutes(61)), None, now).is_err());
        assert!(check_window(Some(now - Duration::hours(5)), Some(now), now).is_ok());
        // Timestamps at the ends of time are refused or accepted, never a panic.
        let far =
            parse_unix(Some(&DateTime::<Utc>::MAX_UTC.timestamp().to_string())).expect("in range");
        assert!(check_window(None, far, now).is_ok());
        assert!(check_window(far, far, now).is_err());
        let early =
            parse_unix(Some(&DateTime::<Utc>::MIN_UTC.timestamp().to_string())).expect("in range");
        assert!(check_window(early, None, now).is_err());
        assert!(check_window(None, early, now).is_err());
        assert!(parse_unix(Some("1e300")).is_err());
    }

    #[test]
    fn rfc9421_round_trip() {
        let (private, public) = key();
        let body = br#"{"type":"Create"}"#;
        let now = Utc::now();
        let created = now.timestamp();
        let content_digest = format!("sha-256=:{}:", BASE64.encode(Sha256::digest(body)));
        let params = format!(
            r#"("@method" "@target-uri" "content-digest");created={created};keyid="https://f.example/u/a#main-key";alg="rsa-v1_5-sha256""#
        );
        let base = format!(
            "\"@method\": POST\n\"@target-uri\": https://blogs.example/@ceo/inbox\n\"content-digest\": {content_digest}\n\"@signature-params\": {params}"
        );
        let key = rsa::pkcs1v15::SigningKey::<Sha256>::new(private.clone());
        let signature = BASE64.encode(key.sign(base.as_bytes()).to_bytes());
        let map = headers(&[
            ("host", "blogs.example".into()),
            ("content-digest", content_digest.clone()),
            ("signature-input", format!("sig1={params}")),
            ("signature", format!("sig1=:{signature}:")),
        ]);
        let request = SignedRequest {
            method: "POST",
            path_and_query: "/@ceo/inbox",
            scheme: "https",
            headers: &map,
            body,
        };
        let claim = parse(&request, now).expect("parses");
        assert_eq!(claim.key_id, "https://f.example/u/a#main-key");
        claim.verify(&public).expect("verifies");

        // PSS as well.
        let pss_params = params.replace("rsa-v1_5-sha256", "rsa-pss-sha512");
        let pss_base = base.replace("rsa-v1_5-sha256", "rsa-pss-sha512");
        let pss_key = rsa::pss::BlindedSigningKey::<Sha512>::new(private);
        let pss = BASE64.encode(
            pss_key
                .sign_with_rng(&mut rand_core_06::OsRng, pss_base.as_bytes())
                .to_bytes(),
        );
        let map = headers(&[
            ("host", "blogs.example".into()),
            ("content-digest", content_digest),
            ("signature-input", format!("sig1={pss_params}")),
            ("signature", format!("sig1=:{pss}:")),
        ]);
        let request = SignedRequest {
            method: "POST",
            path_and_query: "/@ceo/inbox",
            scheme: "https",
            headers: &map,
            body,
        };
        parse(&request, now)
            .expect("parses")
            .verify(&public)
            .expect("PSS verifies");
    }
}
