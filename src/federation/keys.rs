//! Signing keys: one RSA key pair per blog and one for the instance itself (which signs
//! fetches). Made on first use and kept in the database; the private key is never served.

use activitypub_federation::config::Data;
use activitypub_federation::http_signatures::generate_actor_keypair;
use activitypub_federation::traits::{Actor, Object};
use diesel::prelude::*;
use url::Url;

use super::{FederationData, FederationError};
use crate::config::Settings;
use crate::db::schema::actor_keys;
use crate::db::{DbConnection, is_unique_violation};
use crate::domain::blogs::Blog;

/// One of our actors as a signer: a blog, or the instance.
#[derive(Debug, Clone)]
pub struct LocalActor {
    /// Its id (the blog's URL, or `/actor`).
    pub id: Url,
    /// Its inbox.
    pub inbox: Url,
    /// PEM public key.
    pub public_key_pem: String,
    private_key_pem: String,
}

impl LocalActor {
    /// The key id others fetch to verify our signatures.
    pub fn key_id(&self) -> String {
        format!("{}#main-key", self.id)
    }

    /// The private key, read and checked for signing (which costs more than many
    /// signatures, so callers keep it).
    pub fn signing_key(&self) -> Result<SigningKey, FederationError> {
        openssl::pkey::PKey::private_key_from_pem(self.private_key_pem.as_bytes())
            .map(SigningKey)
            .map_err(|e| FederationError::Invalid(format!("the signing key cannot be read: {e}")))
    }
}

/// A private key ready to sign. Signs with the system OpenSSL, whose RSA is the fastest
/// on hand (the library signs with the `rsa` crate, many times slower).
pub struct SigningKey(openssl::pkey::PKey<openssl::pkey::Private>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    /// An RSASSA-PKCS1-v1_5 SHA-256 signature of `message` (`rsa-sha256`).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, FederationError> {
        let failed = |e: openssl::error::ErrorStack| {
            FederationError::Invalid(format!("signing failed: {e}"))
        };
        let mut signer =
            openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &self.0)
                .map_err(failed)?;
        signer.update(message).map_err(failed)?;
        signer.sign_to_vec().map_err(failed)
    }
}

/// The key pair of `owner` (`blog:<id>` or `instance`), made on first use. If two
/// requests make one at once, the first insert wins and both use it.
pub fn key_pair(conn: &mut DbConnection, owner: &str) -> Result<(String, String), FederationError> {
    let existing: Option<(String, String)> = actor_keys::table
        .find(owner)
        .select((actor_keys::public_key_pem, actor_keys::private_key_pem))
        .first(conn)
        .optional()?;
    if let Some(pair) = existing {
        return Ok(pair);
    }
    let pair = generate_actor_keypair()?;
    // In a savepoint of its own: on PostgreSQL a failed insert would abort the caller's
    // transaction, and the read below would fail with it.
    let inserted = crate::db::write_tx(conn, |c| {
        diesel::insert_into(actor_keys::table)
            .values((
                actor_keys::owner.eq(owner),
                actor_keys::public_key_pem.eq(&pair.public_key),
                actor_keys::private_key_pem.eq(&pair.private_key),
                actor_keys::created_at.eq(crate::domain::now()),
            ))
            .execute(c)
    });
    match inserted {
        Err(e) if !is_unique_violation(&e) => Err(e.into()),
        _ => Ok(actor_keys::table
            .find(owner)
            .select((actor_keys::public_key_pem, actor_keys::private_key_pem))
            .first(conn)?),
    }
}

/// A URL for a path on this server.
pub fn url(settings: &Settings, path: &str) -> Url {
    settings
        .base_url
        .join(path)
        .unwrap_or_else(|_| settings.base_url.clone())
}

/// The blog's actor id (its home page).
pub fn blog_id(settings: &Settings, blog: &Blog) -> Url {
    url(settings, &blog.path())
}

/// The blog's key pair (public, private PEM), made if it has none yet. Blogs get theirs
/// when they are created, as Mastodon accounts do: made on first use instead, the first
/// fan-out would wait for it.
pub fn blog_keys(
    conn: &mut DbConnection,
    blog_id: i64,
) -> Result<(String, String), FederationError> {
    key_pair(conn, &format!("blog:{blog_id}"))
}

/// A blog as a signer.
pub fn blog_actor(
    conn: &mut DbConnection,
    settings: &Settings,
    blog: &Blog,
) -> Result<LocalActor, FederationError> {
    let (public_key_pem, private_key_pem) = blog_keys(conn, blog.id)?;
    Ok(LocalActor {
        id: blog_id(settings, blog),
        inbox: url(settings, &format!("{}/inbox", blog.path())),
        public_key_pem,
        private_key_pem,
    })
}

/// The instance's own actor (`/actor`), which signs fetches made for no particular blog.
pub fn instance_actor(
    conn: &mut DbConnection,
    settings: &Settings,
) -> Result<LocalActor, FederationError> {
    let (public_key_pem, private_key_pem) = key_pair(conn, "instance")?;
    Ok(LocalActor {
        id: url(settings, "/actor"),
        inbox: url(settings, "/inbox"),
        public_key_pem,
        private_key_pem,
    })
}

#[async_trait::async_trait]
impl Object for LocalActor {
    type DataType = FederationData;
    type Kind = serde_json::Value;
    type Error = FederationError;

    fn id(&self) -> &Url {
        &self.id
    }

    async fn read_from_id(
        _object_id: Url,
        _data: &Data<Self::DataType>,
    ) -> Result<Option<Self>, Self::Error> {
        // Local actors are never looked up through the library.
        Ok(None)
    }

    async fn into_json(self, _data: &Data<Self::DataType>) -> Result<Self::Kind, Self::Error> {
        Err(FederationError::Invalid(
            "local actors are served by their own routes".into(),
        ))
    }

    async fn verify(
        _json: &Self::Kind,
        _expected_domain: &Url,
        _data: &Data<Self::DataType>,
    ) -> Result<(), Self::Error> {
        Err(FederationError::Invalid(
            "local actors are never received".into(),
        ))
    }

    async fn from_json(
        _json: Self::Kind,
        _data: &Data<Self::DataType>,
    ) -> Result<Self, Self::Error> {
        Err(FederationError::Invalid(
            "local actors are never received".into(),
        ))
    }
}

impl Actor for LocalActor {
    fn public_key_pem(&self) -> &str {
        &self.public_key_pem
    }

    fn private_key_pem(&self) -> Option<String> {
        Some(self.private_key_pem.clone())
    }

    fn inbox(&self) -> Url {
        self.inbox.clone()
    }
}
