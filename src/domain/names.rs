//! Names people type: blog handles, usernames, post slugs, tags, email addresses.
//! Each is parsed once at the edge; a value of these types is known to be valid.

use std::fmt;

/// Text as typed, without control characters other than tab and newline: office
/// documents paste vertical tabs (Word's manual line break) and the like, which break
/// feeds and email. Line-breaking controls become spaces, so words stay apart; carriage
/// returns and other controls go.
pub fn without_controls(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            '\n' | '\t' => Some(c),
            '\u{b}' | '\u{c}' | '\u{85}' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

/// Words that cannot be a post slug because the blog uses them for its own pages.
const RESERVED_SLUGS: &[&str] = &[
    "about",
    "tags",
    "tagged",
    "page",
    "feed",
    "followers",
    "following",
    "outbox",
    "inbox",
    "featured",
    "settings",
    "subscribe",
    "posts",
    "media",
    "replies",
    "likes",
    "shares",
];

/// Handles that would collide with instance paths or confuse readers.
const RESERVED_HANDLES: &[&str] = &[
    "admin",
    "administrator",
    "root",
    "rounds",
    "support",
    "help",
    "security",
    "postmaster",
    "abuse",
    "webmaster",
    "noreply",
    "no_reply",
    "instance",
    "actor",
    "inbox",
    "dashboard",
];

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// A blog's handle: the `ceo` in `@ceo@trust.example` and `/@ceo`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Handle(String);
string_newtype!(Handle);

impl Handle {
    /// Lower-case letters, digits and underscores, 1 to 30 long, starting with a letter
    /// (what Mastodon accepts in a username). Upper case is folded.
    pub fn parse(input: &str) -> Result<Self, String> {
        let value = input.trim().trim_start_matches('@').to_ascii_lowercase();
        if value.is_empty() {
            return Err("Enter a handle".into());
        }
        if value.len() > 30 {
            return Err("Handle must be 30 characters or fewer".into());
        }
        if !value.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err("Handle must start with a letter".into());
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err("Handle can only contain letters, numbers and underscores".into());
        }
        if RESERVED_HANDLES.contains(&value.as_str()) {
            return Err(format!("The handle “{value}” is reserved"));
        }
        Ok(Self(value))
    }
}

/// A sign-in name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);
string_newtype!(Username);

impl Username {
    /// Lower-case letters, digits, `.`, `_` and `-`, 2 to 40 long. Upper case is folded.
    pub fn parse(input: &str) -> Result<Self, String> {
        let value = input.trim().to_ascii_lowercase();
        if value.len() < 2 {
            return Err("Username must be at least 2 characters".into());
        }
        if value.len() > 40 {
            return Err("Username must be 40 characters or fewer".into());
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        {
            return Err(
                "Username can only contain letters, numbers, dots, hyphens and underscores".into(),
            );
        }
        Ok(Self(value))
    }
}

/// An email address, folded to lower case: mail systems in the NHS treat addresses
/// case-insensitively, and one person must not end up with two accounts or subscriptions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);
string_newtype!(EmailAddress);

impl EmailAddress {
    /// One `local@domain` address, at most 254 characters.
    pub fn parse(input: &str) -> Result<Self, String> {
        let value = input.trim().to_ascii_lowercase();
        if value.is_empty() {
            return Err("Enter an email address".into());
        }
        let invalid =
            || "Enter an email address in the correct format, like name@nhs.net".to_owned();
        if value.len() > 254 {
            return Err("Email address must be 254 characters or fewer".into());
        }
        let (local, domain) = value.rsplit_once('@').ok_or_else(invalid)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        let domain_ok = domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !local_ok || !domain_ok {
            return Err(invalid());
        }
        Ok(Self(format!("{local}@{domain}")))
    }

    /// The part after the `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

/// The last part of a post's address, `our-plan` in `/@ceo/our-plan`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slug(String);
string_newtype!(Slug);

impl Slug {
    /// Lower-case letters, digits and single hyphens, 1 to 80 long, not a reserved word.
    pub fn parse(input: &str) -> Result<Self, String> {
        let value = input.trim();
        if value.is_empty() {
            return Err("Enter a web address for the post".into());
        }
        if value.len() > 80 {
            return Err("Web address must be 80 characters or fewer".into());
        }
        let valid = value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !value.starts_with('-')
            && !value.ends_with('-')
            && !value.contains("--");
        if !valid {
            return Err(
                "Web address can only contain lower-case letters, numbers and single hyphens"
                    .into(),
            );
        }
        if RESERVED_SLUGS.contains(&value) {
            return Err(format!(
                "“{value}” is used by the blog itself; choose another"
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// A slug made from a title or the first words of a post (at most 8 words).
    pub fn derive(text: &str) -> Self {
        let words: Vec<&str> = text.split_whitespace().take(8).collect();
        let mut value = slug::slugify(words.join(" "));
        if value.len() > 60 {
            value.truncate(60);
            value = value.trim_end_matches('-').to_owned();
            // Cut at the last whole word.
            if let Some(i) = value.rfind('-').filter(|&i| i > 20) {
                value.truncate(i);
            }
        }
        if value.is_empty() {
            value = "post".to_owned();
        }
        if RESERVED_SLUGS.contains(&value.as_str())
            || value.starts_with(|c: char| c.is_ascii_digit()) && value.len() < 3
        {
            value = format!("post-{value}");
        }
        Self(value)
    }

    /// This slug with a number after it, for the n-th post that wanted the same one.
    pub fn numbered(&self, n: u32) -> Self {
        Self(format!("{}-{n}", self.0))
    }
}

/// A hashtag as an author wrote it (`NHSWorkforce`); compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TagName(String);
string_newtype!(TagName);

impl TagName {
    /// Letters, digits and underscores (any script), 1 to 60 long; a leading `#` is
    /// dropped. The same rule as Mastodon's hashtags.
    pub fn parse(input: &str) -> Result<Self, String> {
        let value = input.trim().trim_start_matches('#');
        if value.is_empty() {
            return Err("Enter a tag".into());
        }
        if value.chars().count() > 60 {
            return Err(format!("Tag “{value}” must be 60 characters or fewer"));
        }
        if !value.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err(format!(
                "Tag “{value}” can only contain letters, numbers and underscores"
            ));
        }
        if value.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("Tag “{value}” must contain a letter"));
        }
        Ok(Self(value.to_owned()))
    }

    /// The key tags are matched and linked by: lower case.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }

    /// Tags from a comma- or space-separated list, duplicates (by key) dropped.
    pub fn parse_list(input: &str) -> Result<Vec<Self>, String> {
        let mut tags: Vec<Self> = Vec::new();
        for part in input
            .split([',', ' ', '\n', '\t'])
            .filter(|p| !p.trim().is_empty())
        {
            let tag = Self::parse(part)?;
            if !tags.iter().any(|t| t.key() == tag.key()) {
                tags.push(tag);
            }
        }
        if tags.len() > 20 {
            return Err("A post can have at most 20 tags".into());
        }
        Ok(tags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_dropped() {
        assert_eq!(
            without_controls("a\u{b}b\r\nc\td\u{85}e\u{7}"),
            "a b\nc\td e"
        );
    }

    #[test]
    fn handles() {
        assert_eq!(Handle::parse("@CEO_1").map(|h| h.0), Ok("ceo_1".into()));
        assert!(Handle::parse("1ceo").is_err());
        assert!(Handle::parse("ce-o").is_err());
        assert!(Handle::parse("admin").is_err());
        assert!(Handle::parse(&"a".repeat(31)).is_err());
    }

    #[test]
    fn emails() {
        assert_eq!(
            EmailAddress::parse(" Jane.Doe@NHS.net ").map(|e| e.0),
            Ok("jane.doe@nhs.net".into())
        );
        for bad in [
            "",
            "no-at",
            "a@b",
            "a@@b.com",
            ".a@b.com",
            "a@-b.com",
            "a b@c.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn slugs() {
        assert_eq!(
            Slug::derive("Our plan for 2026: winter!").0,
            "our-plan-for-2026-winter"
        );
        assert_eq!(Slug::derive("   ").0, "post");
        assert_eq!(Slug::derive("About").0, "post-about");
        assert!(Slug::parse("our-plan").is_ok());
        assert!(Slug::parse("Our plan").is_err());
        assert!(Slug::parse("tags").is_err());
        assert!(Slug::parse("a--b").is_err());
        assert!(Slug::derive(&"word ".repeat(40)).0.len() <= 60);
    }

    #[test]
    fn tags() {
        let tags = TagName::parse_list("#NHS, winter nhs  Élan_2").expect("valid");
        let names: Vec<_> = tags.iter().map(|t| t.as_str()).collect();
        assert_eq!(names, ["NHS", "winter", "Élan_2"]);
        assert_eq!(tags[2].key(), "élan_2");
        assert!(TagName::parse("a-b").is_err());
        assert!(TagName::parse("2026").is_err());
    }
}
