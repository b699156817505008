//! Mentions of fediverse accounts in a post's Markdown: `@user@server`, as Mastodon and
//! its kin write them.
//!
//! A mention counts only in running text: not in code, not inside a link or an image, and
//! not after a letter, digit, `_`, `=` or `/` (so `jane@nhs.net` and
//! `https://example.social/@jane@nhs.net` are not mentions). The user part is ASCII
//! letters, digits, `_`, `.` and `-` (ending with a letter, digit or `_`); the server is a
//! host name with at least one dot (or `localhost`), optionally with a port. A full stop
//! after the server ends the sentence, not the address. Something that starts like a
//! mention but is not one (`@jane@`, `@jane@nhs`, `@@jane@nhs.net`) is reported as
//! malformed, for the editor's checks.

use std::fmt;
use std::ops::Range;

use pulldown_cmark::{CowStr, Event, Parser, Tag, TagEnd};

/// At most this many accounts are mentioned in one post; more stay plain text.
pub const MAX_MENTIONS: usize = 20;

/// A fediverse account's address, `user@server`, in its canonical form: the user in lower
/// case (servers match it without case), the server as a lower-case ASCII host (an
/// international name in its `xn--` form), with its port if one was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Acct {
    user: String,
    host: String,
}

impl Acct {
    /// Reads `user@server` or `@user@server`; `None` if it is not exactly one address.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.strip_prefix('@').unwrap_or(text);
        let at = format!("@{text}");
        match scan(&at).0.as_slice() {
            [only] if only.range == (0..at.len()) => Some(only.acct.clone()),
            _ => None,
        }
    }

    /// The user part.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The server, with its port if it has one.
    pub fn host(&self) -> &str {
        &self.host
    }
}

impl fmt::Display for Acct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.user, self.host)
    }
}

/// What a post's Markdown mentions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// Well-formed mentions, in the order first written, each once (at most
    /// [`MAX_MENTIONS`]).
    pub mentions: Vec<Acct>,
    /// Text that starts like a mention but is not one, as written.
    pub malformed: Vec<String>,
    /// Accounts mentioned beyond the first [`MAX_MENTIONS`], which stay plain text.
    pub over_limit: usize,
}

/// The mentions (and near misses) in a post's Markdown.
pub fn find(markdown: &str) -> Found {
    let mut found = Found::default();
    let mut context = Context::default();
    let mut text = String::new();
    let note = |text: &mut String, found: &mut Found| {
        let (spots, malformed) = scan(text);
        for spot in spots {
            if found.mentions.contains(&spot.acct) {
                continue;
            }
            if found.mentions.len() < MAX_MENTIONS {
                found.mentions.push(spot.acct);
            } else {
                found.over_limit += 1;
            }
        }
        for token in malformed {
            if !found.malformed.contains(&token) {
                found.malformed.push(token);
            }
        }
        text.clear();
    };
    for event in Parser::new_ext(markdown, super::html::markdown_options()) {
        match event {
            Event::Text(t) if context.mentionable() => text.push_str(&t),
            other => {
                note(&mut text, &mut found);
                context.follow(&other);
            }
        }
    }
    note(&mut text, &mut found);
    found
}

/// Turns the mentions in running text into links, Mastodon's way: for each mention
/// `profile` knows, `<span class="h-card"><a href="PROFILE" class="u-url mention">@<span>user</span></a></span>`.
/// Other text, and mentions it does not know, pass through unchanged.
pub fn link<'a>(
    events: impl Iterator<Item = Event<'a>>,
    profile: &dyn Fn(&Acct) -> Option<String>,
) -> Vec<Event<'a>> {
    let mut out = Vec::new();
    let mut context = Context::default();
    let mut text = String::new();
    let flush = |text: &mut String, out: &mut Vec<Event<'a>>| {
        if text.is_empty() {
            return;
        }
        let mut last = 0;
        for spot in scan(text).0 {
            let Some(href) = profile(&spot.acct) else {
                continue;
            };
            if spot.range.start > last {
                out.push(Event::Text(CowStr::from(
                    text[last..spot.range.start].to_owned(),
                )));
            }
            out.push(Event::InlineHtml(CowStr::from(format!(
                r#"<span class="h-card"><a href="{}" class="u-url mention">@<span>{}</span></a></span>"#,
                escape_attribute(&href),
                // The user part is ASCII letters, digits and `_.-`: nothing to escape.
                &text[spot.user.clone()]
            ))));
            last = spot.range.end;
        }
        if last < text.len() {
            out.push(Event::Text(CowStr::from(text[last..].to_owned())));
        }
        text.clear();
    };
    for event in events {
        match event {
            Event::Text(t) if context.mentionable() => text.push_str(&t),
            other => {
                flush(&mut text, &mut out);
                context.follow(&other);
                out.push(other);
            }
        }
    }
    flush(&mut text, &mut out);
    out
}

fn escape_attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Where in a Markdown document running text is: links, images and code are not.
#[derive(Default)]
struct Context {
    links: usize,
    images: usize,
    code_blocks: usize,
    html_links: usize,
}

impl Context {
    fn mentionable(&self) -> bool {
        self.links == 0 && self.images == 0 && self.code_blocks == 0 && self.html_links == 0
    }

    fn follow(&mut self, event: &Event<'_>) {
        match event {
            Event::Start(Tag::Link { .. }) => self.links += 1,
            Event::End(TagEnd::Link) => self.links = self.links.saturating_sub(1),
            Event::Start(Tag::Image { .. }) => self.images += 1,
            Event::End(TagEnd::Image) => self.images = self.images.saturating_sub(1),
            Event::Start(Tag::CodeBlock(_)) => self.code_blocks += 1,
            Event::End(TagEnd::CodeBlock) => self.code_blocks = self.code_blocks.saturating_sub(1),
            // An author's own `<a …>…</a>` in the text: a link inside it would nest.
            Event::InlineHtml(html) => {
                let tag = html.trim_start().to_ascii_lowercase();
                if tag.starts_with("<a ") || tag.starts_with("<a>") {
                    self.html_links += 1;
                } else if tag.starts_with("</a") {
                    self.html_links = self.html_links.saturating_sub(1);
                }
            }
            _ => {}
        }
    }
}

/// One mention in a run of text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spot {
    /// From the `@` to the end of the server.
    range: Range<usize>,
    /// The user part as written.
    user: Range<usize>,
    acct: Acct,
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Mentions in plain text, and the tokens that start like one but are not.
fn scan(text: &str) -> (Vec<Spot>, Vec<String>) {
    let mut spots = Vec::new();
    let mut malformed = Vec::new();
    let mut from = 0;
    while let Some(offset) = text[from..].find('@') {
        let start = from + offset;
        from = start + 1;
        let before = text[..start].chars().next_back();
        if before.is_some_and(|c| is_word(c) || matches!(c, '=' | '/' | '@')) {
            continue;
        }
        let token = token_at(text, start);
        // Only something with a second `@` is meant as a fediverse address; `@jane`
        // alone is left to the reader.
        if !token[1..].contains('@') {
            continue;
        }
        match mention_at(text, start) {
            Some(spot) => {
                from = spot.range.end;
                spots.push(spot);
            }
            None => {
                from = start + token.len();
                malformed.push(token.to_owned());
            }
        }
    }
    (spots, malformed)
}

/// The text from `start` to the next space, less closing punctuation.
fn token_at(text: &str, start: usize) -> &str {
    let end = text[start..]
        .find(char::is_whitespace)
        .map_or(text.len(), |n| start + n);
    text[start..end].trim_end_matches(|c: char| {
        matches!(
            c,
            '.' | ',' | ';' | ':' | '!' | '?' | ')' | ']' | '}' | '"' | '\'' | '’' | '”' | '…'
        )
    })
}

/// The mention starting at the `@` at `start`, if it is a whole, well-formed one.
fn mention_at(text: &str, start: usize) -> Option<Spot> {
    let rest = &text[start + 1..];
    // The user: ASCII word characters, with `.` and `-` inside.
    let mut user_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        .unwrap_or(rest.len());
    while user_len > 0 && rest[..user_len].ends_with(['.', '-']) {
        user_len -= 1;
    }
    if user_len == 0 || !rest[user_len..].starts_with('@') {
        return None;
    }
    let user = &rest[..user_len];
    let server_start = start + 1 + user_len + 1;
    let server = &text[server_start..];
    let host_len = host_length(server);
    if host_len == 0 {
        return None;
    }
    let mut end = server_start + host_len;
    let mut port = None;
    if let Some(after) = text[end..].strip_prefix(':')
        && after.starts_with(|c: char| c.is_ascii_digit())
    {
        let digits = after
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after.len());
        port = Some(after[..digits].parse::<u16>().ok().filter(|p| *p > 0)?);
        end += 1 + digits;
    }
    // What follows must end the address: `@jane@nhs.net@x`, `@jane@nhs..net` and
    // `@jane@nhs.net_x` are mistakes, not mentions.
    let next = &text[end..];
    let mut chars = next.chars();
    match (chars.next(), chars.next()) {
        (Some(c), _) if is_word(c) || c == '@' => return None,
        (Some('.' | '-'), Some(c)) if is_word(c) || matches!(c, '.' | '-') => return None,
        (Some(':'), Some(c)) if c.is_ascii_digit() => return None,
        _ => {}
    }
    let written_host = &text[server_start..server_start + host_len];
    let host = ascii_host(written_host)?;
    if !(host.contains('.') || host == "localhost") {
        return None;
    }
    let host = match port {
        Some(port) => format!("{host}:{port}"),
        None => host,
    };
    Some(Spot {
        range: start..end,
        user: start + 1..start + 1 + user_len,
        acct: Acct {
            user: user.to_ascii_lowercase(),
            host,
        },
    })
}

/// How long the host name at the start of `text` is: labels of letters, digits and
/// hyphens (not at either end of a label), joined by dots; a final dot is not part of it.
fn host_length(text: &str) -> usize {
    let mut end = 0;
    let mut position = 0;
    for label in text.split('.') {
        let length = label
            .find(|c: char| !(c.is_alphanumeric() || c == '-'))
            .unwrap_or(label.len());
        let name = &label[..length];
        if name.is_empty() || name.starts_with('-') || name.ends_with('-') || name.len() > 63 {
            break;
        }
        end = position + length;
        if length < label.len() {
            break;
        }
        position += label.len() + 1;
    }
    end
}

/// A host as written, in lower-case ASCII (international names in `xn--` form).
fn ascii_host(written: &str) -> Option<String> {
    match url::Host::parse(written).ok()? {
        url::Host::Domain(domain) if domain.len() <= 253 => Some(domain),
        // A bare address is refused by federation anyway; keep it as text.
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accts(markdown: &str) -> Vec<String> {
        find(markdown)
            .mentions
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn mentions_in_running_text() {
        assert_eq!(
            accts("Thanks @Jane@Trust.NHS.uk and @bob_2@social.example. Also @jane@trust.nhs.uk!"),
            ["jane@trust.nhs.uk", "bob_2@social.example"]
        );
        assert_eq!(accts("(@a.b-c@x.example)"), ["a.b-c@x.example"]);
        assert_eq!(accts("@ceo@localhost:8080, hello"), ["ceo@localhost:8080"]);
        assert_eq!(accts("**@em@x.example**"), ["em@x.example"]);
        assert_eq!(accts("@δοκιμή@παράδειγμα.δοκιμή"), Vec::<String>::new());
        assert_eq!(accts("@jo@bücher.example"), ["jo@xn--bcher-kva.example"]);
    }

    #[test]
    fn not_mentions() {
        for text in [
            "Email jane@nhs.net",
            "See https://mastodon.social/@jane@nhs.net",
            "`@jane@nhs.net`",
            "```\n@jane@nhs.net\n```",
            "[@jane@nhs.net](https://nhs.net)",
            "<a href=\"https://x.example\">@jane@nhs.net</a>",
            "![@jane@nhs.net](/media/a.png)",
            "Say hi to @jane on Friday",
            "a=@jane@nhs.net",
        ] {
            assert_eq!(accts(text), Vec::<String>::new(), "{text}");
        }
    }

    #[test]
    fn malformed_mentions_are_reported() {
        let found =
            find("Ask @jane@ or @bob@nhs, @@carol@nhs.net, @dan@nhs..net and @eve@nhs.net@x.");
        assert!(found.mentions.is_empty(), "{found:?}");
        assert_eq!(
            found.malformed,
            [
                "@jane@",
                "@bob@nhs",
                "@@carol@nhs.net",
                "@dan@nhs..net",
                "@eve@nhs.net@x"
            ]
        );
        assert!(find("@x@y.example:99999").mentions.is_empty());
        assert!(find("Email jane@nhs.net").malformed.is_empty());
    }

    #[test]
    fn parse_one_address() {
        let acct = Acct::parse("@Jane@Trust.nhs.uk").expect("valid");
        assert_eq!((acct.user(), acct.host()), ("jane", "trust.nhs.uk"));
        assert_eq!(
            Acct::parse("b@localhost:4000").map(|a| a.to_string()),
            Some("b@localhost:4000".into())
        );
        assert_eq!(Acct::parse("jane@nhs.net and more"), None);
        assert_eq!(Acct::parse("jane"), None);
    }

    #[test]
    fn at_most_twenty_accounts() {
        let text: Vec<String> = (0..30).map(|n| format!("@u{n}@x.example")).collect();
        let found = find(&text.join(" "));
        assert_eq!(found.mentions.len(), MAX_MENTIONS);
        assert_eq!(found.over_limit, 10);
    }

    #[test]
    fn known_mentions_become_links() {
        let events = Parser::new("Hi @Jane@x.example and @bob@y.example. `@jane@x.example`");
        let linked = link(events, &|acct| {
            (acct.user() == "jane").then(|| "https://x.example/@jane?a=1&b=\"".to_owned())
        });
        let mut html = String::new();
        pulldown_cmark::html::push_html(&mut html, linked.into_iter());
        assert_eq!(
            html,
            "<p>Hi <span class=\"h-card\"><a href=\"https://x.example/@jane?a=1&amp;b=&quot;\" class=\"u-url mention\">@<span>Jane</span></a></span> and @bob@y.example. <code>@jane@x.example</code></p>\n"
        );
    }
}
