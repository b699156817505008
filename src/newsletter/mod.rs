//! The newsletter: staff subscribe by email to one or more blogs and get each post, or
//! a daily or weekly digest with the best replies, until one click unsubscribes them.
//!
//! * [`subscribers`]: addresses, their blogs and cadences, double opt-in;
//! * [`tokens`]: signed links to preferences and one-click unsubscribe;
//! * [`template`]: the emails, rendered with maud (HTML and plain text);
//! * [`sending`]: the durable jobs that fan a post or digest out to subscribers;
//! * [`digest`]: when digests are due;
//! * [`pages`], [`team`]: the public pages and the editors' tools.

pub mod digest;
pub mod pages;
pub mod sending;
pub mod subscribers;
pub mod team;
pub mod template;
pub mod tokens;

use serde::{Deserialize, Serialize};

/// How often a subscriber hears from a blog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cadence {
    /// An email for every post.
    EachPost,
    /// A digest every morning.
    Daily,
    /// A digest once a week.
    Weekly,
}

impl Cadence {
    /// Every cadence, in the order forms show them.
    pub const ALL: [Cadence; 3] = [Cadence::EachPost, Cadence::Daily, Cadence::Weekly];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EachPost => "each_post",
            Self::Daily => "daily",
            Self::Weekly => "weekly",
        }
    }

    /// From the stored or submitted name.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == value)
    }

    /// How people read it.
    pub fn label(self) -> &'static str {
        match self {
            Self::EachPost => "Each post",
            Self::Daily => "Daily digest",
            Self::Weekly => "Weekly digest",
        }
    }
}
