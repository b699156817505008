//! Signed links: a subscriber's preferences and one-click unsubscribe need no password,
//! so the link itself proves who it is for. Each is an HMAC-SHA256 over the subscriber,
//! the blog and the purpose, keyed by a secret kept in the database (every node agrees).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::db::{self, DbConnection};

/// What a link lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// See and change preferences.
    Preferences,
    /// Unsubscribe from one blog (or everything, for blog 0).
    Unsubscribe,
}

impl Purpose {
    fn tag(self) -> &'static str {
        match self {
            Self::Preferences => "p",
            Self::Unsubscribe => "u",
        }
    }
}

/// Makes and checks signed links.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

/// Who a checked link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The subscriber.
    pub subscriber_id: i64,
    /// The blog (0: none in particular).
    pub blog_id: i64,
}

impl Signer {
    /// The instance's signer (its key is made the first time and kept).
    pub fn load(conn: &mut DbConnection) -> diesel::QueryResult<Self> {
        let key = db::instance_secret(conn, "newsletter_link_key", || {
            let bytes: [u8; 32] = rand::random();
            URL_SAFE_NO_PAD.encode(bytes)
        })?;
        Ok(Self {
            key: key.into_bytes(),
        })
    }

    /// A signer for previews: its links look real but work nowhere.
    pub fn for_preview() -> Self {
        Self {
            key: b"preview".to_vec(),
        }
    }

    fn mac(&self, message: &str) -> String {
        // HMAC accepts keys of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(message.as_bytes());
        URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..18])
    }

    /// A token for `purpose`, e.g. `p.12.3.<mac>`.
    pub fn token(&self, purpose: Purpose, subscriber_id: i64, blog_id: i64) -> String {
        let body = format!("{}.{subscriber_id}.{blog_id}", purpose.tag());
        let mac = self.mac(&body);
        format!("{body}.{mac}")
    }

    /// Who a token is for, if it is genuine and for `purpose`.
    pub fn verify(&self, purpose: Purpose, token: &str) -> Option<Verified> {
        let mut parts = token.split('.');
        let (tag, subscriber, blog, mac) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || tag != purpose.tag() {
            return None;
        }
        let subscriber_id: i64 = subscriber.parse().ok()?;
        let blog_id: i64 = blog.parse().ok()?;
        let expected = self.mac(&format!("{tag}.{subscriber_id}.{blog_id}"));
        constant_time_eq::constant_time_eq(expected.as_bytes(), mac.as_bytes()).then_some(
            Verified {
                subscriber_id,
                blog_id,
            },
        )
    }
}

/// A fresh random token for a confirmation link, and the hash that is stored.
pub fn random_token() -> (String, String) {
    let bytes: [u8; 32] = rand::random();
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&token);
    (token, hash)
}

/// The stored form of a random token.
pub fn hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_for_their_purpose_and_values() {
        let signer = Signer {
            key: b"test key".to_vec(),
        };
        let token = signer.token(Purpose::Unsubscribe, 12, 3);
        assert_eq!(
            signer.verify(Purpose::Unsubscribe, &token),
            Some(Verified {
                subscriber_id: 12,
                blog_id: 3
            })
        );
        assert_eq!(signer.verify(Purpose::Preferences, &token), None);
        let forged = token.replacen(".12.", ".13.", 1);
        assert_eq!(signer.verify(Purpose::Unsubscribe, &forged), None);
        assert_eq!(signer.verify(Purpose::Unsubscribe, "u.1.2"), None);
        assert_eq!(signer.verify(Purpose::Unsubscribe, ""), None);
    }
}
