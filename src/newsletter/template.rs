//! The emails subscribers get, rendered with maud: an HTML part built for mail clients
//! (tables, inline styles, the NHS blue, readable in Outlook, on phones and in dark
//! mode; every link absolute) and a plain-text part with the same words.

use chrono::NaiveDateTime;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::domain::html::{SafeHtml, excerpt, plain_text};

const FONT: &str = "font-family:Frutiger,Arial,Helvetica,sans-serif;";
const TEXT: &str = "color:#212b32;";
const BLUE: &str = "#005eb8";

/// Kept to what mail clients honour; inline styles carry the rest. Dark mode: clients
/// that restyle leave readable contrast because every colour is set on both sides.
const HEAD_STYLE: &str = "img{max-width:100%;height:auto;border:0}\
 a{color:#005eb8}\
 blockquote{margin:0 0 16px 0;padding-left:12px;border-left:4px solid #d8dde0}\
 @media (prefers-color-scheme: dark){\
 .rounds-page{background-color:#111111 !important}\
 .rounds-card{background-color:#1d1d1d !important;color:#f0f4f5 !important}\
 .rounds-card a{color:#9fd3ff !important}\
 .rounds-muted{color:#c9d1d6 !important}}";

/// A reply shown under a post in a digest.
#[derive(Debug, Clone)]
pub struct ReplyItem {
    /// The author's name.
    pub author: String,
    /// Their server, e.g. `mastodon.social`.
    pub server: String,
    /// The reply, sanitised.
    pub html: SafeHtml,
    /// Where to read it.
    pub url: Option<String>,
}

/// One post in an email.
#[derive(Debug, Clone)]
pub struct Item {
    /// An article's title (short updates have none).
    pub title: Option<String>,
    /// An article's summary.
    pub summary: Option<String>,
    /// A content warning shown before the text.
    pub content_warning: Option<String>,
    /// The text as Markdown (for the plain-text part).
    pub markdown: String,
    /// The text, sanitised, links and images absolute.
    pub html: SafeHtml,
    /// The post's absolute address.
    pub url: String,
    /// When it was published.
    pub published_at: Option<NaiveDateTime>,
    /// Whether the whole text is shown (per-post emails, short updates in digests) or
    /// only title, summary and link (articles in digests).
    pub in_full: bool,
    /// The best approved replies.
    pub replies: Vec<ReplyItem>,
    /// Likes from the fediverse.
    pub likes: i64,
    /// Boosts from the fediverse.
    pub boosts: i64,
}

/// A whole email.
#[derive(Debug, Clone)]
pub struct Letter {
    /// The subject line.
    pub subject: String,
    /// The instance's name.
    pub instance_name: String,
    /// The blog's name.
    pub blog_name: String,
    /// The leader's role and organisation.
    pub byline: Option<String>,
    /// The blog's absolute address.
    pub blog_url: String,
    /// A line above the posts (a digest's title), if any.
    pub heading: Option<String>,
    /// The posts.
    pub items: Vec<Item>,
    /// The subscriber's preferences page.
    pub preferences_url: String,
    /// The one-click unsubscribe page for this blog.
    pub unsubscribe_url: String,
    /// An aggregate open counter, only when an admin turned tracking on.
    pub open_counter_url: Option<String>,
}

/// The subject of a per-post email.
pub fn post_subject(blog_name: &str, title: Option<&str>, markdown: &str) -> String {
    match title {
        Some(title) => format!("{title} – {blog_name}"),
        None => format!("{blog_name}: {}", excerpt(&plain_text(markdown), 60)),
    }
}

fn date(at: NaiveDateTime) -> String {
    crate::editorial::schedule::format_london(at)
}

/// The HTML part.
pub fn html(letter: &Letter) -> String {
    let card = format!("{FONT}{TEXT}background-color:#ffffff;");
    let body_text = format!("{FONT}{TEXT}font-size:16px;line-height:24px;");
    // One h1 a message: the digest's title, else the post's title, else the blog's name.
    let title_is_heading = letter.heading.is_none();
    let name_is_heading =
        title_is_heading && letter.items.first().is_none_or(|i| i.title.is_none());
    let markup: Markup = html! {
        (DOCTYPE)
        html lang="en-GB" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                meta name="supported-color-schemes" content="light dark";
                title { (letter.subject) }
                style { (PreEscaped(HEAD_STYLE)) }
            }
            body class="rounds-page" style="margin:0;padding:0;background-color:#f0f4f5;" {
                div role="main" {
                table role="presentation" class="rounds-page" width="100%" cellpadding="0" cellspacing="0" border="0" bgcolor="#f0f4f5" style="background-color:#f0f4f5;" {
                    tr { td align="center" style="padding:16px 8px;" {
                        table role="presentation" class="rounds-card" width="600" cellpadding="0" cellspacing="0" border="0" bgcolor="#ffffff" style={ "width:100%;max-width:600px;border-collapse:collapse;" (card) } {
                            tr { td bgcolor=(BLUE) style={ "background-color:" (BLUE) ";padding:16px 24px;" (FONT) } {
                                @let name = html! { a href=(letter.blog_url) style="color:#ffffff;text-decoration:none;font-size:20px;font-weight:bold;" { (letter.blog_name) } };
                                @if name_is_heading {
                                    h1 style="margin:0;font-size:20px;line-height:28px;" { (name) }
                                } @else {
                                    (name)
                                }
                                @if let Some(byline) = &letter.byline {
                                    br;
                                    span style="color:#ffffff;font-size:14px;" { (byline) }
                                }
                            } }
                            @if let Some(heading) = &letter.heading {
                                tr { td style={ "padding:24px 24px 0 24px;" (body_text) } {
                                    h1 style={ "margin:0;font-size:24px;line-height:32px;" (FONT) } { (heading) }
                                } }
                            }
                            @for item in &letter.items {
                                tr { td style={ "padding:24px 24px 8px 24px;border-bottom:1px solid #d8dde0;" (body_text) } {
                                    (item_html(item, &body_text, title_is_heading))
                                } }
                            }
                            tr { td class="rounds-muted" style={ "padding:24px;" (FONT) "color:#4c6272;font-size:14px;line-height:20px;" } {
                                p style="margin:0 0 8px 0;" {
                                    "You get this because you subscribed to " (letter.blog_name) " on " (letter.instance_name) "."
                                }
                                p style="margin:0;" {
                                    a href=(letter.preferences_url) style={ "color:" (BLUE) ";" } { "Change how often you get these, or download or erase your data" }
                                    " · "
                                    a href=(letter.unsubscribe_url) style={ "color:" (BLUE) ";" } { "Unsubscribe" }
                                }
                                @if let Some(counter) = &letter.open_counter_url {
                                    img src=(counter) alt="" width="1" height="1" style="display:block;border:0;";
                                }
                            } }
                        }
                    } }
                }
                }
            }
        }
    };
    markup.into_string()
}

fn item_html(item: &Item, body_text: &str, title_is_heading: bool) -> Markup {
    let title_style = format!("margin:0 0 8px 0;font-size:22px;line-height:30px;{FONT}");
    html! {
        @if let Some(title) = &item.title {
            @let link = html! { a href=(item.url) style={ "color:" (BLUE) ";" } { (title) } };
            @if title_is_heading {
                h1 style=(title_style) { (link) }
            } @else {
                h2 style=(title_style) { (link) }
            }
            @if let Some(summary) = &item.summary {
                p style={ "margin:0 0 16px 0;font-size:19px;line-height:28px;" (body_text) } { (summary) }
            }
        }
        @if let Some(published) = item.published_at {
            p class="rounds-muted" style={ "margin:0 0 16px 0;" (FONT) "color:#4c6272;font-size:14px;" } { (date(published)) }
        }
        @if let Some(warning) = &item.content_warning {
            table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="margin:0 0 16px 0;border-collapse:collapse;" {
                tr { td bgcolor="#fff9c4" style={ "background-color:#fff9c4;border-left:8px solid #ffeb3b;padding:12px 16px;color:#212b32;" (FONT) } {
                    strong { "Content warning: " } (warning)
                } }
            }
        }
        @if item.in_full || item.title.is_none() {
            div style=(body_text) { (item.html) }
        }
        p style={ "margin:0 0 16px 0;" (body_text) } {
            a href=(item.url) style={ "color:" (BLUE) ";font-weight:bold;" } {
                @if item.in_full { "Read it on the web and reply" } @else { "Read the whole post" }
            }
            @if item.likes > 0 || item.boosts > 0 {
                span class="rounds-muted" style="color:#4c6272;font-size:14px;" {
                    " · " (count(item.likes, "like", "likes")) ", " (count(item.boosts, "boost", "boosts"))
                }
            }
        }
        @if !item.replies.is_empty() {
            p style={ "margin:8px 0;font-size:18px;font-weight:bold;" (FONT) } { "Replies" }
            @for reply in &item.replies {
                table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="margin:0 0 12px 0;border-collapse:collapse;" {
                    tr { td style={ "border-left:4px solid #d8dde0;padding:4px 12px;" (body_text) } {
                        p style="margin:0 0 4px 0;font-size:14px;" {
                            strong { (reply.author) } " on " (reply.server)
                        }
                        div { (reply.html) }
                        @if let Some(url) = &reply.url {
                            p style="margin:0;font-size:14px;" { a href=(url) style={ "color:" (BLUE) ";" } { "View the reply" } }
                        }
                    } }
                }
            }
        }
    }
}

fn count(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The plain-text part.
pub fn text(letter: &Letter) -> String {
    let mut out = String::new();
    out.push_str(&letter.blog_name);
    if let Some(byline) = &letter.byline {
        out.push_str(&format!(", {byline}"));
    }
    out.push('\n');
    if let Some(heading) = &letter.heading {
        out.push_str(&format!(
            "\n{heading}\n{}\n",
            "=".repeat(heading.chars().count())
        ));
    }
    for item in &letter.items {
        out.push('\n');
        if let Some(title) = &item.title {
            out.push_str(&format!("{title}\n{}\n", "-".repeat(title.chars().count())));
            if let Some(summary) = &item.summary {
                out.push_str(&format!("{summary}\n"));
            }
        }
        if let Some(published) = item.published_at {
            out.push_str(&format!("{}\n", date(published)));
        }
        if let Some(warning) = &item.content_warning {
            out.push_str(&format!("\nContent warning: {warning}\n"));
        }
        if item.in_full || item.title.is_none() {
            out.push_str(&format!("\n{}\n", item.markdown.trim()));
        }
        out.push_str(&format!("\nRead it on the web: {}\n", item.url));
        if item.likes > 0 || item.boosts > 0 {
            out.push_str(&format!(
                "{}, {}\n",
                count(item.likes, "like", "likes"),
                count(item.boosts, "boost", "boosts")
            ));
        }
        if !item.replies.is_empty() {
            out.push_str("\nReplies:\n");
            for reply in &item.replies {
                out.push_str(&format!(
                    "\n  {} on {}:\n  {}\n",
                    reply.author,
                    reply.server,
                    html_to_text(reply.html.as_str()).replace('\n', "\n  ")
                ));
            }
        }
    }
    out.push_str(&format!(
        "\n--\nYou get this because you subscribed to {} on {}.\nPreferences, your data: {}\nUnsubscribe: {}\n",
        letter.blog_name, letter.instance_name, letter.preferences_url, letter.unsubscribe_url
    ));
    out
}

/// Sanitised HTML as plain text: paragraphs and breaks kept as line breaks, tags dropped.
fn html_to_text(html: &str) -> String {
    let spaced = html
        .replace("</p>", "\n\n")
        .replace("<br>", "\n")
        .replace("<br/>", "\n");
    let text = ammonia::Builder::empty().clean(&spaced).to_string();
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
        .trim()
        .to_owned()
}
