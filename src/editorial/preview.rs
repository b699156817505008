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
    /// The HTML part (links and images made absolute).
    pub html: SafeHtml,
    /// The plain-text part.
    pub text: String,
}

/// The email for a post. A simple rendering: the newsletter (issue 4) owns the real
/// template; when it is merged, this function should call it, so the preview shows
/// exactly what subscribers get.
pub fn email(settings: &Settings, blog: &Blog, content: &Content, url: &str) -> Email {
    let subject = match &content.title {
        Some(title) => format!("{title} – {}", blog.display_name),
        None => format!(
            "{}: {}",
            blog.display_name,
            html::excerpt(&html::plain_text(&content.body), 60)
        ),
    };
    let html = SafeHtml::from_markdown(&content.body).with_absolute_urls(&settings.base_url);
    let mut text = String::new();
    if let Some(title) = &content.title {
        text.push_str(title);
        text.push_str("\n\n");
    }
    if let Some(summary) = &content.summary {
        text.push_str(summary);
        text.push_str("\n\n");
    }
    text.push_str(content.body.trim());
    text.push_str(&format!("\n\nRead it on the web: {url}\n"));
    Email {
        subject,
        html,
        text,
    }
}
