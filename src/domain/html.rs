//! Markdown to HTML, and the one type a view may render unescaped.

use std::sync::LazyLock;

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// HTML that has passed the sanitiser. The only constructors run ammonia; a value read
/// from the database was written from a `SafeHtml` (the only `ToSql` for those columns).
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Default,
    diesel::expression::AsExpression,
    diesel::deserialize::FromSqlRow,
)]
#[diesel(sql_type = Text)]
pub struct SafeHtml(String);

impl SafeHtml {
    /// Renders an author's Markdown: CommonMark with tables, strikethrough and task
    /// lists; headings moved down one level (the page title is the only `h1`); then
    /// sanitised.
    pub fn from_markdown(markdown: &str) -> Self {
        let mut html = String::with_capacity(markdown.len() * 3 / 2);
        let events = Parser::new_ext(markdown, markdown_options()).map(demote_heading);
        pulldown_cmark::html::push_html(&mut html, events);
        Self(LOCAL.clean(&html).to_string())
    }

    /// Renders an author's Markdown as [`SafeHtml::from_markdown`] does, with each mention
    /// of an account that `profile` knows (by its address, to its profile page) made a
    /// link in Mastodon's microformat (see [`super::mentions::link`]).
    pub fn from_markdown_with_mentions(
        markdown: &str,
        profile: &dyn Fn(&super::mentions::Acct) -> Option<String>,
    ) -> Self {
        let mut html = String::with_capacity(markdown.len() * 3 / 2);
        let events = Parser::new_ext(markdown, markdown_options()).map(demote_heading);
        pulldown_cmark::html::push_html(
            &mut html,
            super::mentions::link(events, profile).into_iter(),
        );
        Self(LOCAL.clean(&html).to_string())
    }

    /// Escapes plain text into HTML paragraphs (used where no Markdown is wanted).
    pub fn from_plain_text(text: &str) -> Self {
        let mut html = String::new();
        for paragraph in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
            html.push_str("<p>");
            for (i, line) in paragraph.trim().lines().enumerate() {
                if i > 0 {
                    html.push_str("<br>");
                }
                escape_into(&mut html, line);
            }
            html.push_str("</p>");
        }
        Self(html)
    }

    /// The same HTML with relative links and image sources made absolute against `base`,
    /// for places read away from this site (feeds, email, the fediverse).
    pub fn with_absolute_urls(&self, base: &url::Url) -> Self {
        let mut builder = local_builder();
        builder.url_relative(ammonia::UrlRelative::RewriteWithBase(base.clone()));
        Self(builder.clean(&self.0).to_string())
    }

    /// The HTML other servers get: addresses absolute, and no images (they travel as
    /// attachments with their alt text; Mastodon drops images in HTML).
    pub fn for_federation(&self, base: &url::Url) -> Self {
        let mut builder = local_builder();
        builder
            .rm_tags(["img"])
            .url_relative(ammonia::UrlRelative::RewriteWithBase(base.clone()));
        Self(builder.clean(&self.0).to_string())
    }

    /// HTML from another server (a reply), cleaned to an allow-list stricter than
    /// Mastodon's: paragraphs, line breaks, links, emphasis, quotes, code and lists;
    /// only the classes in [`REMOTE_CLASSES`]; no styles, images or scripts; links open
    /// nothing and pass no referrer.
    pub fn from_remote(html: &str) -> Self {
        Self(REMOTE.clean(html).to_string())
    }

    /// The HTML text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether there is no HTML at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl maud::Render for SafeHtml {
    fn render_to(&self, buffer: &mut String) {
        buffer.push_str(&self.0);
    }
}

impl<DB> FromSql<Text, DB> for SafeHtml
where
    DB: Backend,
    String: FromSql<Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        String::from_sql(bytes).map(Self)
    }
}

impl<DB> ToSql<Text, DB> for SafeHtml
where
    DB: Backend,
    String: ToSql<Text, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        self.0.to_sql(out)
    }
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// The Markdown our authors write: CommonMark with tables, strikethrough and task lists.
pub(crate) fn markdown_options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS
}

fn demote_heading(event: Event<'_>) -> Event<'_> {
    let lower = |level: HeadingLevel| match level {
        HeadingLevel::H1 => HeadingLevel::H2,
        HeadingLevel::H2 => HeadingLevel::H3,
        HeadingLevel::H3 => HeadingLevel::H4,
        HeadingLevel::H4 => HeadingLevel::H5,
        HeadingLevel::H5 | HeadingLevel::H6 => HeadingLevel::H6,
    };
    match event {
        Event::Start(Tag::Heading {
            level,
            id,
            classes,
            attrs,
        }) => Event::Start(Tag::Heading {
            level: lower(level),
            id,
            classes,
            attrs,
        }),
        Event::End(TagEnd::Heading(level)) => Event::End(TagEnd::Heading(lower(level))),
        other => other,
    }
}

/// The allow-list for HTML we render from our own authors' Markdown.
static LOCAL: LazyLock<ammonia::Builder<'static>> = LazyLock::new(local_builder);

fn local_builder() -> ammonia::Builder<'static> {
    let mut builder = ammonia::Builder::empty();
    builder
        .add_tags([
            "p",
            "br",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "a",
            "img",
            "blockquote",
            "code",
            "pre",
            "ul",
            "ol",
            "li",
            "em",
            "strong",
            "del",
            "hr",
            "table",
            "thead",
            "tbody",
            "tr",
            "th",
            "td",
            "input",
            "span",
        ])
        .add_tag_attributes("a", ["href", "title"])
        // Mentions in Mastodon's microformat (`h-card`, `u-url mention`), so other
        // servers and feed readers know them; no other classes.
        .allowed_classes(
            [
                ("a", ["u-url", "mention"].into()),
                ("span", ["h-card"].into()),
            ]
            .into(),
        )
        .add_tag_attributes("img", ["src", "alt", "title"])
        .add_tag_attributes("ol", ["start"])
        .add_tag_attributes("th", ["align"])
        .add_tag_attributes("td", ["align"])
        // Task-list checkboxes: pulldown-cmark writes them disabled; nothing else survives.
        .add_tag_attributes("input", ["type", "checked", "disabled"])
        .set_tag_attribute_value("input", "disabled", "")
        .set_tag_attribute_value("img", "loading", "lazy")
        .url_schemes(["http", "https", "mailto"].into())
        .link_rel(Some("noopener noreferrer"))
        .url_relative(ammonia::UrlRelative::PassThrough);
    builder
}

/// The classes kept on links and spans from other servers: those of Mastodon's that
/// mean something in a post's text. Mastodon shortens a long link to
/// `<span class="invisible">https://</span><span class="ellipsis">host/pa</span>
/// <span class="invisible">th</span>` (our stylesheet hides and marks them as it does);
/// mentions and hashtags are marked `mention`, `hashtag`, and with the microformats
/// `h-card` and `u-url`. Mastodon keeps any `h-`, `p-`, `u-`, `dt-` or `e-` class; we
/// keep only the names servers put in posts, so no other class (none of the NHS.UK
/// frontend's, nor ours) can make a reply look like part of the page.
pub const REMOTE_CLASSES: &[&str] = &[
    "invisible",
    "ellipsis",
    "mention",
    "hashtag",
    "h-card",
    "u-url",
];

/// The allow-list for HTML from other servers (replies): Mastodon's, without the ruby
/// tags and with fewer classes, so nothing can be styled to look like our own page.
static REMOTE: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let classes: std::collections::HashSet<&str> = REMOTE_CLASSES.iter().copied().collect();
    let mut builder = ammonia::Builder::empty();
    builder
        .add_tags([
            "p",
            "br",
            "span",
            "a",
            "del",
            "s",
            "pre",
            "blockquote",
            "code",
            "b",
            "strong",
            "u",
            "i",
            "em",
            "ul",
            "ol",
            "li",
        ])
        // `empty()` clears only the tags: ammonia's default attributes (`lang` and
        // `title` everywhere, `hreflang` on links) would still pass.
        .tag_attributes([("a", ["href"].into())].into())
        .generic_attributes(std::collections::HashSet::new())
        .allowed_classes([("a", classes.clone()), ("span", classes)].into())
        // A class with none of those names goes altogether, not as `class=""`.
        .attribute_filter(|_, attribute, value| {
            let keep = attribute != "class"
                || value
                    .split_ascii_whitespace()
                    .any(|class| REMOTE_CLASSES.contains(&class));
            keep.then_some(value.into())
        })
        .url_schemes(["http", "https", "mailto"].into())
        .link_rel(Some("nofollow noopener noreferrer ugc"))
        .url_relative(ammonia::UrlRelative::Deny);
    builder
});

/// The text of a Markdown document without any markup, whitespace collapsed.
pub fn plain_text(markdown: &str) -> String {
    let mut text = String::with_capacity(markdown.len());
    for event in Parser::new_ext(markdown, markdown_options()) {
        match event {
            Event::Text(t) | Event::Code(t) => text.push_str(&t),
            Event::SoftBreak
            | Event::HardBreak
            | Event::End(
                TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::Item
                | TagEnd::BlockQuote(_)
                | TagEnd::CodeBlock
                | TagEnd::TableCell
                | TagEnd::TableRow,
            ) => text.push(' '),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first `max_chars` characters of `text`, cut at a word boundary, with an ellipsis
/// when anything was cut.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max_chars).collect();
    let cut = match cut.rfind(' ') {
        Some(i) if i > max_chars / 2 => &cut[..i],
        _ => &cut,
    };
    format!("{}…", cut.trim_end_matches([',', '.', ';', ':', ' ']))
}

/// A Markdown image that has no alt text, as found in a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageWithoutAlt {
    /// The image address as written.
    pub url: String,
}

/// Every image in the Markdown whose alt text is empty.
pub fn images_without_alt(markdown: &str) -> Vec<ImageWithoutAlt> {
    let mut missing = Vec::new();
    let mut current: Option<(String, String)> = None;
    for event in Parser::new_ext(markdown, markdown_options()) {
        match event {
            Event::Start(Tag::Image { dest_url, .. }) => {
                current = Some((dest_url.into_string(), String::new()));
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some((_, alt)) = current.as_mut() {
                    alt.push_str(&t);
                }
            }
            Event::End(TagEnd::Image) => {
                if let Some((url, alt)) = current.take()
                    && alt.trim().is_empty()
                {
                    missing.push(ImageWithoutAlt { url });
                }
            }
            _ => {}
        }
    }
    missing
}

/// The address of the first image in the Markdown, with its alt text.
pub fn first_image(markdown: &str) -> Option<(String, String)> {
    let mut current: Option<(String, String)> = None;
    for event in Parser::new_ext(markdown, markdown_options()) {
        match event {
            Event::Start(Tag::Image { dest_url, .. }) => {
                current = Some((dest_url.into_string(), String::new()));
            }
            Event::Text(t) => {
                if let Some((_, alt)) = current.as_mut() {
                    alt.push_str(&t);
                }
            }
            Event::End(TagEnd::Image) => return current,
            _ => {}
        }
    }
    None
}

/// An image a post would carry to Mastodon as an attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The image address as written.
    pub url: String,
    /// Its alt text (Mastodon's `name`).
    pub alt: String,
}

/// Mastodon keeps at most this many attachments on a post.
pub const MASTODON_ATTACHMENTS: usize = 4;

/// The post's text as Mastodon shows a note, for the editorial preview: its sanitiser
/// keeps only `p br span a del s pre blockquote code b strong u i em ul ol li ruby rt
/// rp`, so headings become a bold paragraph, images leave the text (they travel as up to
/// four attachments, alt text and all), and tables and rules are reduced to their text.
pub fn mastodon_note(markdown: &str) -> (SafeHtml, Vec<Attachment>) {
    let mut attachments = Vec::new();
    let mut image: Option<Attachment> = None;
    let mut events = Vec::new();
    for event in Parser::new_ext(markdown, markdown_options()) {
        match event {
            Event::Start(Tag::Image { dest_url, .. }) => {
                image = Some(Attachment {
                    url: dest_url.into_string(),
                    alt: String::new(),
                });
            }
            Event::End(TagEnd::Image) => {
                if let Some(found) = image.take() {
                    attachments.push(found);
                }
            }
            Event::Text(t) if image.is_some() => {
                if let Some(found) = image.as_mut() {
                    found.alt.push_str(&t);
                }
            }
            Event::Start(Tag::Heading { .. }) => {
                events.push(Event::Start(Tag::Paragraph));
                events.push(Event::Start(Tag::Strong));
            }
            Event::End(TagEnd::Heading(_)) => {
                events.push(Event::End(TagEnd::Strong));
                events.push(Event::End(TagEnd::Paragraph));
            }
            other => events.push(other),
        }
    }
    attachments.truncate(MASTODON_ATTACHMENTS);
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    (SafeHtml(MASTODON.clean(&html).to_string()), attachments)
}

/// Mastodon's allow-list (app/lib/sanitize_config.rb, its `MASTODON_STRICT`).
static MASTODON: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::empty();
    builder
        .add_tags([
            "p",
            "br",
            "span",
            "a",
            "del",
            "s",
            "pre",
            "blockquote",
            "code",
            "b",
            "strong",
            "u",
            "i",
            "em",
            "ul",
            "ol",
            "li",
            "ruby",
            "rt",
            "rp",
        ])
        // Set outright: `empty()` keeps ammonia's default attributes (`lang`, `title`,
        // `hreflang`), which Mastodon's list does not have.
        .tag_attributes(
            [
                ("a", ["href"].into()),
                ("ol", ["start", "reversed"].into()),
                ("li", ["value"].into()),
            ]
            .into(),
        )
        .generic_attributes(std::collections::HashSet::new())
        .url_schemes(["http", "https", "mailto"].into())
        .link_rel(Some("nofollow noopener noreferrer"))
        .url_relative(ammonia::UrlRelative::PassThrough);
    builder
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_rendered_and_scripts_removed() {
        let html = SafeHtml::from_markdown(
            "# Plan\n\nHello <script>alert(1)</script> **team** [x](javascript:alert(1))\n\n<img src=x onerror=alert(1)>",
        );
        let s = html.as_str();
        assert!(s.contains("<h2>Plan</h2>"), "{s}");
        assert!(s.contains("<strong>team</strong>"), "{s}");
        assert!(!s.contains("script"), "{s}");
        assert!(!s.contains("javascript"), "{s}");
        assert!(!s.contains("onerror"), "{s}");
    }

    #[test]
    fn images_keep_alt_text_and_links_get_rel() {
        let html = SafeHtml::from_markdown("![Ward 7 team](/media/a.jpg) [site](https://nhs.uk)");
        assert!(
            html.as_str().contains(r#"alt="Ward 7 team""#),
            "{}",
            html.as_str()
        );
        assert!(html.as_str().contains(r#"rel="noopener noreferrer""#));
    }

    #[test]
    fn remote_html_keeps_only_the_allow_list() {
        let html = SafeHtml::from_remote(
            r#"<h1>Big</h1><p class="x" style="color:red">Hi <a href="https://a.example/x" onclick="e()" class="mention">@a</a> <img src="x"><script>bad()</script><span class="invisible">y</span></p><a href="javascript:x">j</a><a href="/rel">r</a>"#,
        );
        let s = html.as_str();
        assert!(!s.contains("<h1") && s.contains("Big"), "{s}");
        assert!(
            !s.contains(r#"class="x""#) && !s.contains("style=") && !s.contains("onclick"),
            "{s}"
        );
        assert!(
            !s.contains("<img") && !s.contains("script") && !s.contains("bad()"),
            "{s}"
        );
        assert!(
            s.contains(
                r#"<a href="https://a.example/x" class="mention" rel="nofollow noopener noreferrer ugc">@a</a>"#
            ),
            "{s}"
        );
        assert!(s.contains(r#"<span class="invisible">y</span>"#), "{s}");
        assert!(
            !s.contains("javascript") && !s.contains(r#"href="/rel""#),
            "{s}"
        );
    }

    #[test]
    fn remote_html_keeps_mastodons_link_and_mention_classes() {
        // As Mastodon 4 writes a status with a mention, a hashtag and a long link.
        let html = SafeHtml::from_remote(concat!(
            r#"<p><span class="h-card" translate="no"><a href="https://m.example/@ceo" class="u-url mention">@<span>ceo</span></a></span> "#,
            r#"<a href="https://m.example/tags/nhs" class="mention hashtag" rel="tag">#<span>NHS</span></a> "#,
            r#"<a href="https://www.england.nhs.uk/long/path/to/the/plan" target="_blank" rel="nofollow noopener" translate="no">"#,
            r#"<span class="invisible">https://www.</span><span class="ellipsis">england.nhs.uk/long/path/t</span><span class="invisible">o/the/plan</span></a></p>"#,
        ));
        let rel = r#"rel="nofollow noopener noreferrer ugc""#;
        assert_eq!(
            html.as_str(),
            format!(
                concat!(
                    r#"<p><span class="h-card"><a href="https://m.example/@ceo" class="u-url mention" {rel}>@<span>ceo</span></a></span> "#,
                    r#"<a href="https://m.example/tags/nhs" class="mention hashtag" {rel}>#<span>NHS</span></a> "#,
                    r#"<a href="https://www.england.nhs.uk/long/path/to/the/plan" {rel}>"#,
                    r#"<span class="invisible">https://www.</span><span class="ellipsis">england.nhs.uk/long/path/t</span><span class="invisible">o/the/plan</span></a></p>"#,
                ),
                rel = rel
            )
        );
    }

    #[test]
    fn remote_html_drops_every_other_class() {
        let html = SafeHtml::from_remote(concat!(
            r#"<p class="mention"><span class="nhsuk-button invisible h-entry">a</span>"#,
            r#"<a href="https://a.example/" class="nhsuk-u-visually-hidden rounds-reply">b</a>"#,
            r#"<em class="invisible">c</em><span class="INVISIBLE p-name">d</span></p>"#,
        ));
        assert_eq!(
            html.as_str(),
            concat!(
                r#"<p><span class="invisible">a</span>"#,
                r#"<a href="https://a.example/" rel="nofollow noopener noreferrer ugc">b</a>"#,
                r#"<em>c</em><span>d</span></p>"#,
            )
        );
    }

    #[test]
    fn remote_html_drops_ammonias_default_attributes() {
        let html = SafeHtml::from_remote(
            r#"<p lang="en" title="t"><a href="https://a.example/" hreflang="en" title="x">a</a></p>"#,
        );
        assert_eq!(
            html.as_str(),
            r#"<p><a href="https://a.example/" rel="nofollow noopener noreferrer ugc">a</a></p>"#
        );
    }

    #[test]
    fn federation_html_is_absolute_and_has_no_images() {
        let base = url::Url::parse("https://blogs.example/@ceo/plan").expect("url");
        let html = SafeHtml::from_markdown("![alt](/media/a.png) [more](/@ceo/other)")
            .for_federation(&base);
        assert!(!html.as_str().contains("<img"), "{}", html.as_str());
        assert!(
            html.as_str()
                .contains(r#"href="https://blogs.example/@ceo/other""#),
            "{}",
            html.as_str()
        );
    }

    #[test]
    fn mentions_keep_mastodons_microformat_and_nothing_else() {
        let profile = |acct: &super::super::mentions::Acct| {
            (acct.to_string() == "b@other.example").then(|| "https://other.example/@b".to_owned())
        };
        let html = SafeHtml::from_markdown_with_mentions(
            "Hi @b@other.example and @c@other.example. <span class=\"evil h-card\" style=\"x\">s</span> <a class=\"big\" href=\"/x\">x</a>",
            &profile,
        );
        let expected = r#"<span class="h-card"><a href="https://other.example/@b" class="u-url mention" rel="noopener noreferrer">@<span>b</span></a></span>"#;
        assert!(html.as_str().contains(expected), "{}", html.as_str());
        assert!(
            html.as_str().contains("and @c@other.example."),
            "{}",
            html.as_str()
        );
        assert!(
            html.as_str().contains(r#"<span class="h-card">s</span>"#),
            "{}",
            html.as_str()
        );
        assert!(!html.as_str().contains("big") && !html.as_str().contains("style"));
        // Feeds, email and the fediverse clean again with the same list: it survives.
        let base = url::Url::parse("https://blogs.example/@ceo/hi").expect("url");
        assert!(html.for_federation(&base).as_str().contains(expected));
        assert!(html.with_absolute_urls(&base).as_str().contains(expected));
    }

    #[test]
    fn plain_text_escapes() {
        let html = SafeHtml::from_plain_text("a <b>\nc\n\nd");
        assert_eq!(html.as_str(), "<p>a &lt;b&gt;<br>c</p><p>d</p>");
    }

    #[test]
    fn finds_images_without_alt() {
        let md = "![](/media/a.jpg) ![ok](/media/b.jpg) ![  ](c.png)";
        let missing: Vec<_> = images_without_alt(md).into_iter().map(|i| i.url).collect();
        assert_eq!(missing, ["/media/a.jpg", "c.png"]);
        assert_eq!(
            first_image(md),
            Some(("/media/a.jpg".into(), String::new()))
        );
    }

    #[test]
    fn excerpt_cuts_at_words() {
        assert_eq!(excerpt("short", 10), "short");
        assert_eq!(excerpt("one two three four five", 12), "one two…");
        assert_eq!(plain_text("# Title\n\nSome *text*."), "Title Some text.");
    }

    #[test]
    fn mastodon_preview_drops_attributes_mastodon_does_not_keep() {
        let (html, _) = mastodon_note(
            r#"<p lang="en" title="t"><a href="https://a.example/" hreflang="en">a</a></p>"#,
        );
        assert!(!html.as_str().contains("lang="), "{}", html.as_str());
        assert!(!html.as_str().contains("title="), "{}", html.as_str());
        assert!(
            html.as_str().contains(r#"href="https://a.example/""#),
            "{}",
            html.as_str()
        );
    }

    #[test]
    fn mastodon_keeps_its_allow_list() {
        let (html, attachments) = mastodon_note(
            "# Plan\n\nWe **opened** ward 7. ![Nurses at the door](/media/a.jpg)\n\n| a | b |\n|---|---|\n| 1 | 2 |",
        );
        let s = html.as_str();
        assert!(s.starts_with("<p><strong>Plan</strong></p>"), "{s}");
        assert!(s.contains("<strong>opened</strong>"), "{s}");
        assert!(
            !s.contains("<img") && !s.contains("<table") && !s.contains("<h"),
            "{s}"
        );
        assert_eq!(
            attachments,
            [Attachment {
                url: "/media/a.jpg".into(),
                alt: "Nurses at the door".into()
            }]
        );
    }
}
