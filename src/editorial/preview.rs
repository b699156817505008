//! Previews of a revision as readers will meet it: on Mastodon and in email. (The web
//! page preview renders the public post page itself: see `pages::review`.)

use crate::config::Settings;
use crate::domain::blogs::Blog;
use crate::domain::html::{self, Attachment, SafeHtml};

use super::revisions::Content;

/// How Mastodon will show the post.
#[derive(Debug, Clone)]
pub enum Mastodon {
    /// A short update (or any post when the blog sends articles as notes): the text
    /// through Mastodon's sanitiser, with images as attachments.
    Note {
        /// The content warning the text waits behind, if any.
        content_warning: Option<String>,
        /// The text as Mastodon keeps it.
        html: SafeHtml,
        /// Up to four images, with their alt text.
        attachments: Vec<Attachment>,
    },
    /// An article: Mastodon drops the text and shows the title, summary and a link.
    Article {
        /// The title.
        title: String,
        /// The summary, if any.
        summary: Option<String>,
        /// Where the link goes.
        url: String,
    },
}

/// The Mastodon view of `content` on `blog`. `url` is where the post will live.
pub fn mastodon(content: &Content, articles_as_notes: bool, url: &str) -> Mastodon {
    match &content.title {
        Some(title) if !articles_as_notes => Mastodon::Article {
            title: title.clone(),
            summary: crate::federation::objects::article_summary(
                content.content_warning.as_deref(),
                content.summary.as_deref(),
            ),
            url: url.to_owned(),
        },
        _ => {
            let (html, attachments) = html::mastodon_note(&content.body);
            Mastodon::Note {
                content_warning: content.content_warning.clone(),
                html,
                attachments,
            }
        }
    }
}

/// An email as subscribers would get it.
#[derive(Debug, Clone)]
pub struct Email {
    /// The subject line.
    pub subject: String,
    /// The HTML part: a whole document, shown in a frame of its own.
    pub html: String,
    /// The plain-text part.
    pub text: String,
}

/// The email for a post, from the newsletter's own template, so the preview is the email
/// (only the subscriber's links are placeholders).
pub fn email(settings: &Settings, blog: &Blog, content: &Content, url: &str) -> Email {
    let item = crate::newsletter::template::Item {
        title: content.title.clone(),
        summary: content.summary.clone(),
        content_warning: content.content_warning.clone(),
        markdown: content.body.clone(),
        html: SafeHtml::from_markdown(&content.body).with_absolute_urls(&settings.base_url),
        url: url.to_owned(),
        published_at: None,
        in_full: true,
        replies: Vec::new(),
        likes: 0,
        boosts: 0,
    };
    let email = crate::newsletter::sending::preview_post_email(settings, blog, item);
    Email {
        subject: email.subject,
        html: email.html.unwrap_or_default(),
        text: email.text,
    }
}
