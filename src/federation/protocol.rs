//! The documents we send and serve, as ActivityStreams JSON. Kept apart from database
//! rows: these say what other servers see.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::Url;

/// The JSON-LD context of our documents: ActivityStreams, security keys, and the
/// Mastodon and schema.org terms we use.
pub fn context() -> Value {
    json!([
        "https://www.w3.org/ns/activitystreams",
        "https://w3id.org/security/v1",
        {
            "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
            "sensitive": "as:sensitive",
            "Hashtag": "as:Hashtag",
            "toot": "http://joinmastodon.org/ns#",
            "featured": { "@id": "toot:featured", "@type": "@id" },
            "discoverable": "toot:discoverable",
            "indexable": "toot:indexable",
            "schema": "http://schema.org#",
            "PropertyValue": "schema:PropertyValue",
            "value": "schema:value"
        }
    ])
}

/// An image: an avatar, a header, or an attachment with its alt text in `name`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    /// Always `Image`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `image/jpeg` or `image/png`.
    pub media_type: String,
    /// Where it is.
    pub url: Url,
    /// Alt text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<i32>,
    /// Pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<i32>,
}

/// A profile field as Mastodon shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PropertyValue {
    /// Always `PropertyValue`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The label.
    pub name: String,
    /// The value (HTML).
    pub value: String,
}

/// A public key as actors publish it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PublicKey {
    /// `<actor>#main-key`.
    pub id: String,
    /// The actor.
    pub owner: Url,
    /// PEM.
    pub public_key_pem: String,
}

/// Where shared deliveries go.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    /// The shared inbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_inbox: Option<Url>,
}

/// A blog as a fediverse account.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    /// JSON-LD context.
    #[serde(rename = "@context")]
    pub context: Value,
    /// The blog's URL.
    pub id: Url,
    /// `Person`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The handle.
    pub preferred_username: String,
    /// The leader's name.
    pub name: String,
    /// The about text, HTML.
    pub summary: String,
    /// The profile page.
    pub url: Url,
    /// Personal inbox.
    pub inbox: Url,
    /// Paged outbox.
    pub outbox: Url,
    /// Followers collection.
    pub followers: Url,
    /// Following collection.
    pub following: Url,
    /// Pinned posts.
    pub featured: Url,
    /// Shared inbox.
    pub endpoints: Endpoints,
    /// Signing key.
    pub public_key: PublicKey,
    /// When the blog was made.
    pub published: DateTime<Utc>,
    /// Whether follows wait for approval.
    pub manually_approves_followers: bool,
    /// May appear in directories.
    pub discoverable: bool,
    /// May be indexed for search.
    pub indexable: bool,
    /// Profile photo.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icon: Option<Image>,
    /// Header image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
    /// Profile fields.
    pub attachment: Vec<PropertyValue>,
}

/// A hashtag on a post.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Hashtag {
    /// `Hashtag`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The tag page.
    pub href: Url,
    /// `#Tag`.
    pub name: String,
}

/// A collection with just its size (followers, likes, shares, replies).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CollectionSummary {
    /// Its id.
    pub id: Url,
    /// `Collection` or `OrderedCollection`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// How many items.
    pub total_items: i64,
    /// The first page, where there are pages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first: Option<Url>,
}

/// A post (or one of the blog's own replies) as a Note or an Article.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostObject {
    /// JSON-LD context, when served on its own.
    #[serde(rename = "@context", skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// The post's URL.
    pub id: Url,
    /// `Note` or `Article`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The blog.
    pub attributed_to: Url,
    /// Articles: the title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Notes: the content warning; Articles: the standfirst.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The HTML.
    pub content: String,
    /// The HTML `text/markdown` came from, for servers that show it.
    pub media_type: &'static str,
    /// The web page.
    pub url: Url,
    /// When published.
    pub published: DateTime<Utc>,
    /// When last edited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<DateTime<Utc>>,
    /// Public.
    pub to: Vec<String>,
    /// Followers (and, for replies, the person answered).
    pub cc: Vec<String>,
    /// For the blog's replies: what it answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<Url>,
    /// Hashtags and mentions.
    pub tag: Vec<Value>,
    /// Images with alt text.
    pub attachment: Vec<Image>,
    /// Content warning in force.
    pub sensitive: bool,
    /// Replies collection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replies: Option<CollectionSummary>,
    /// Likes, with the total.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub likes: Option<CollectionSummary>,
    /// Boosts, with the total.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shares: Option<CollectionSummary>,
    /// For Articles: the Note servers like Mastodon may show instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<Value>,
}

/// An activity we send.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    /// JSON-LD context.
    #[serde(rename = "@context")]
    pub context: Value,
    /// Unique, stable across redeliveries.
    pub id: Url,
    /// `Create`, `Update`, `Delete`, `Accept`, `Reject`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The blog.
    pub actor: Url,
    /// What it acts on (an object, or the activity it answers).
    pub object: Value,
    /// Audience.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// Audience.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<String>,
    /// When.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<DateTime<Utc>>,
}

/// A deleted object.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tombstone {
    /// JSON-LD context, when served on its own.
    #[serde(rename = "@context", skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// What was there.
    pub id: Url,
    /// `Tombstone`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// When it went.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<DateTime<Utc>>,
}
