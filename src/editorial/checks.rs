//! Checks before publishing. One blocks: every image needs alt text
//! ([`PostInput::publication_problems`]). The rest warn, for a person to judge:
//!
//! * a plain-English readability score (Flesch reading ease) with hints: sentences over
//!   25 words, words of four or more syllables;
//! * anything that looks like patient-identifiable information: a 10-digit number that
//!   passes the NHS number check digit (modulus 11), written `9434765919`,
//!   `943 476 5919` or `943-476-5919`; a labelled hospital, unit, case or patient
//!   number (`Hospital number: RX12345`, `MRN 1234567`); a date labelled as a date of
//!   birth (`DOB 12/03/1954`, `born on 4 May 1970`); and a titled name next to a full
//!   numeric date (`Mrs Jane Brown, 12/03/1954`). These are kept narrow on purpose, so a
//!   warning is worth reading; an unlabelled number that fails the check digit is not
//!   flagged;
//! * links whose address is malformed or will not work from a feed, an email or the
//!   fediverse;
//! * mentions that look like a fediverse address but are not one (`@jane@nhs`,
//!   `@jane@`), and mentions beyond the number a post can carry. Whether a well-formed
//!   account exists is found out when the post goes out (that needs the network): one
//!   that cannot be found stays plain text.

use std::sync::LazyLock;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use regex::Regex;

use crate::domain::posts::PostInput;

/// A sentence longer than this gets a hint.
pub const LONG_SENTENCE_WORDS: usize = 25;
/// Flesch reading ease at or above this is plain English.
pub const PLAIN_ENGLISH_SCORE: f64 = 60.0;

/// What the checks found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Problems that stop publication.
    pub blocking: Vec<String>,
    /// Things a person should look at before publishing.
    pub warnings: Vec<Warning>,
    /// How easy the text is to read, when it has words to score.
    pub readability: Option<Readability>,
}

/// One warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// What kind of thing it is about.
    pub kind: WarningKind,
    /// What was found, in words the author can act on.
    pub message: String,
}

/// Kinds of warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningKind {
    /// Something that may identify a patient.
    PatientIdentifier,
    /// A link that will not work.
    Link,
    /// A mention that will stay plain text.
    Mention,
}

/// A readability score and what would raise it.
#[derive(Debug, Clone, PartialEq)]
pub struct Readability {
    /// Flesch reading ease: higher is easier; 60 and over is plain English.
    pub score: f64,
    /// Words counted.
    pub words: usize,
    /// Sentences counted.
    pub sentences: usize,
    /// The opening words of each sentence over [`LONG_SENTENCE_WORDS`] words, with its length.
    pub long_sentences: Vec<(String, usize)>,
    /// Words of four or more syllables, most frequent first (at most ten).
    pub long_words: Vec<String>,
}

impl Readability {
    /// The score in words.
    pub fn band(&self) -> &'static str {
        match self.score {
            s if s >= 90.0 => "very easy to read",
            s if s >= 80.0 => "easy to read",
            s if s >= 70.0 => "fairly easy to read",
            s if s >= PLAIN_ENGLISH_SCORE => "plain English",
            s if s >= 50.0 => "fairly difficult to read",
            s if s >= 30.0 => "difficult to read",
            _ => "very difficult to read",
        }
    }

    /// Whether the score meets plain English.
    pub fn is_plain(&self) -> bool {
        self.score >= PLAIN_ENGLISH_SCORE
    }
}

/// Runs every check on a post's content.
pub fn check(input: &PostInput) -> Report {
    let blocking = input
        .publication_problems()
        .into_iter()
        .map(|e| e.message)
        .collect();
    let mut text = String::new();
    for part in [&input.title, &input.summary].into_iter().flatten() {
        text.push_str(part);
        text.push_str("\n\n");
    }
    let blocks = blocks_of(&input.body_markdown);
    let all_text = format!("{text}{}", blocks.join("\n\n"));
    let mut warnings = identifiers(&all_text);
    warnings.extend(links(&input.body_markdown));
    warnings.extend(mentions(&input.body_markdown));
    let mut scored: Vec<String> = [&input.title, &input.summary]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    scored.extend(blocks);
    Report {
        blocking,
        warnings,
        readability: readability(&scored),
    }
}

/// The text of each block (paragraph, heading, list item, quote, table cell) of Markdown,
/// without markup. Code is left out: it is not prose.
fn blocks_of(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current = String::new();
    let mut in_code = false;
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    for event in Parser::new_ext(markdown, options) {
        match event {
            Event::Start(Tag::CodeBlock(_)) => in_code = true,
            Event::End(TagEnd::CodeBlock) => in_code = false,
            Event::Text(t) if !in_code => current.push_str(&t),
            Event::Code(t) => current.push_str(&t),
            Event::SoftBreak | Event::HardBreak => current.push(' '),
            Event::End(
                TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::Item
                | TagEnd::TableCell
                | TagEnd::BlockQuote(_),
            ) => {
                let block = current.split_whitespace().collect::<Vec<_>>().join(" ");
                if !block.is_empty() {
                    blocks.push(block);
                }
                current.clear();
            }
            _ => {}
        }
    }
    let rest = current.split_whitespace().collect::<Vec<_>>().join(" ");
    if !rest.is_empty() {
        blocks.push(rest);
    }
    blocks
}

static SENTENCE_END: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"[.!?]+["'”’)]*\s+"#).expect("valid regex"));

/// Flesch reading ease over blocks of text (each block ends a sentence, so a heading
/// without a full stop is not run into the next paragraph).
pub fn readability(blocks: &[String]) -> Option<Readability> {
    let mut sentences: Vec<&str> = Vec::new();
    for block in blocks {
        let mut start = 0;
        for end in SENTENCE_END.find_iter(block) {
            sentences.push(&block[start..end.end()]);
            start = end.end();
        }
        if start < block.len() {
            sentences.push(&block[start..]);
        }
    }
    let mut words = 0usize;
    let mut syllables = 0usize;
    let mut long_sentences = Vec::new();
    let mut long_words: Vec<(String, usize)> = Vec::new();
    let mut counted = 0usize;
    for sentence in &sentences {
        let sentence_words: Vec<String> = sentence
            .split_whitespace()
            .map(|w| {
                w.trim_matches(|c: char| !c.is_alphanumeric())
                    .to_lowercase()
            })
            .filter(|w| w.chars().any(char::is_alphabetic))
            .collect();
        if sentence_words.is_empty() {
            continue;
        }
        counted += 1;
        words += sentence_words.len();
        for word in &sentence_words {
            let n = syllables_in(word);
            syllables += n;
            if n >= 4 {
                match long_words.iter_mut().find(|(w, _)| w == word) {
                    Some((_, count)) => *count += 1,
                    None => long_words.push((word.clone(), 1)),
                }
            }
        }
        if sentence_words.len() > LONG_SENTENCE_WORDS {
            let opening: Vec<&str> = sentence.split_whitespace().take(8).collect();
            long_sentences.push((format!("{}…", opening.join(" ")), sentence_words.len()));
        }
    }
    if words == 0 || counted == 0 {
        return None;
    }
    let words_per_sentence = words as f64 / counted as f64;
    let syllables_per_word = syllables as f64 / words as f64;
    let score = 206.835 - 1.015 * words_per_sentence - 84.6 * syllables_per_word;
    long_words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Some(Readability {
        score: (score * 10.0).round() / 10.0,
        words,
        sentences: counted,
        long_sentences,
        long_words: long_words.into_iter().take(10).map(|(w, _)| w).collect(),
    })
}

/// Syllables in an English word, by the usual rule of thumb: groups of vowels, less a
/// silent final `e` or `-es`/`-ed`, at least one. Right for most words; close enough
/// for a score that only guides.
pub fn syllables_in(word: &str) -> usize {
    let word: String = word
        .chars()
        .filter(char::is_ascii_alphabetic)
        .collect::<String>()
        .to_ascii_lowercase();
    if word.is_empty() {
        return 0;
    }
    if word.len() <= 3 {
        return 1;
    }
    let mut stem = word.as_str();
    // "-es" is its own syllable after a hissing sound (nurses, boxes, pages), "-ed"
    // after t or d (wanted, added); otherwise both are silent, as is a final "e"
    // (except "-le": table).
    if let Some(s) = stem.strip_suffix("es")
        && !s.ends_with(['s', 'x', 'z', 'c', 'g'])
        && !s.ends_with("ch")
        && !s.ends_with("sh")
    {
        stem = s;
    } else if let Some(s) = stem.strip_suffix("ed")
        && !s.ends_with(['t', 'd'])
    {
        stem = s;
    } else if let Some(s) = stem.strip_suffix('e')
        && !s.ends_with('l')
    {
        stem = s;
    }
    let mut groups = 0;
    let mut in_vowels = false;
    for c in stem.chars() {
        let vowel = matches!(c, 'a' | 'e' | 'i' | 'o' | 'u' | 'y');
        if vowel && !in_vowels {
            groups += 1;
        }
        in_vowels = vowel;
    }
    groups.max(1)
}

static NHS_NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(\d{3})[ -]?(\d{3})[ -]?(\d{4})\b").expect("valid regex"));

static LABELLED_NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:hospital\s+(?:number|no\.?|id)|hosp\.?\s*no\.?|MRN|medical\s+record\s+(?:number|no\.?)|patient\s+(?:id|identifier|number|no\.?)|unit\s+(?:number|no\.?)|case\s+(?:number|no\.?))\s*[:#]?\s*([A-Z]{0,3}\d{5,10}[A-Z]?)\b",
    )
    .expect("valid regex")
});

const DATE: &str = r"(?:\d{1,2}[/.\-]\d{1,2}[/.\-](?:\d{4}|\d{2})|\d{1,2}(?:st|nd|rd|th)?\s+(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?\s+\d{4})";

static DATE_OF_BIRTH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)\b(?:DOB|D\.O\.B\.?|date\s+of\s+birth|born(?:\s+on)?)\s*[:\-]?\s*({DATE})"
    ))
    .expect("valid regex")
});

static NAME_AND_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr)\.?\s+[A-Z][a-z'\-]+(?:\s+[A-Z][a-z'\-]+)?\s*[,(]?\s*(?:aged\s+\d{1,3}\s*,?\s*)?(\d{1,2}[/.\-]\d{1,2}[/.\-](?:19|20)\d{2})\b",
    )
    .expect("valid regex")
});

/// Whether ten digits pass the NHS number check: weights 10 down to 2 on the first
/// nine, 11 less the remainder mod 11 (11 counts as 0, 10 is never valid) must equal
/// the tenth.
pub fn is_valid_nhs_number(digits: &str) -> bool {
    let digits: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() != 10 {
        return false;
    }
    // Runs of one digit pass the arithmetic but are placeholders, not numbers.
    if digits.iter().all(|d| *d == digits[0]) {
        return false;
    }
    let sum: u32 = digits[..9]
        .iter()
        .zip((2..=10).rev())
        .map(|(d, w)| d * w)
        .sum();
    let check = match 11 - sum % 11 {
        11 => 0,
        10 => return false,
        n => n,
    };
    check == digits[9]
}

/// Warnings about text that may identify a patient.
pub fn identifiers(text: &str) -> Vec<Warning> {
    let mut warnings = Vec::new();
    let warn = |message: String| Warning {
        kind: WarningKind::PatientIdentifier,
        message,
    };
    for found in NHS_NUMBER.find_iter(text) {
        if is_valid_nhs_number(found.as_str()) {
            warnings.push(warn(format!(
                "“{}” passes the NHS number check: if it is a patient's NHS number, remove it",
                found.as_str()
            )));
        }
    }
    for found in LABELLED_NUMBER.find_iter(text) {
        warnings.push(warn(format!(
            "“{}” looks like a hospital or patient number: remove it unless it is not a patient's",
            found.as_str().trim()
        )));
    }
    for found in DATE_OF_BIRTH.find_iter(text) {
        warnings.push(warn(format!(
            "“{}” looks like a date of birth: remove it unless it is not a patient's",
            found.as_str().trim()
        )));
    }
    for found in NAME_AND_DATE.find_iter(text) {
        warnings.push(warn(format!(
            "“{}” puts a name next to a date, which can identify a patient: check it is not a date of birth",
            found.as_str().trim()
        )));
    }
    warnings
}

/// Warnings about link addresses in Markdown.
pub fn links(markdown: &str) -> Vec<Warning> {
    let mut warnings = Vec::new();
    let mut current: Option<(String, String)> = None;
    for event in Parser::new_ext(markdown, Options::empty()) {
        match event {
            Event::Start(Tag::Link { dest_url, .. }) => {
                current = Some((dest_url.into_string(), String::new()));
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some((_, text)) = current.as_mut() {
                    text.push_str(&t);
                }
            }
            Event::End(TagEnd::Link) => {
                if let Some((url, text)) = current.take()
                    && let Some(problem) = link_problem(&url)
                {
                    warnings.push(Warning {
                        kind: WarningKind::Link,
                        message: format!("The link “{text}” ({url}) {problem}"),
                    });
                }
            }
            _ => {}
        }
    }
    warnings
}

/// Warnings about mentions in Markdown that will not reach anyone.
pub fn mentions(markdown: &str) -> Vec<Warning> {
    let found = crate::domain::mentions::find(markdown);
    let mut warnings: Vec<Warning> = found
        .malformed
        .iter()
        .map(|written| Warning {
            kind: WarningKind::Mention,
            message: format!(
                "“{written}” looks like a mention but is not a whole fediverse address: write it as @name@server.example, or it stays plain text"
            ),
        })
        .collect();
    if found.over_limit > 0 {
        warnings.push(Warning {
            kind: WarningKind::Mention,
            message: format!(
                "The post mentions more than {} accounts: the other {} stay plain text and are not told",
                crate::domain::mentions::MAX_MENTIONS,
                found.over_limit
            ),
        });
    }
    warnings
}

/// What is wrong with a link address, if anything.
pub fn link_problem(url: &str) -> Option<&'static str> {
    let url = url.trim();
    if url.is_empty() {
        return Some("has no address");
    }
    if url.contains(char::is_whitespace) {
        return Some("has spaces in its address");
    }
    if url.starts_with('#') || (url.starts_with('/') && !url.starts_with("//")) {
        return None;
    }
    let lower = url.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("mailto:") {
        return match rest.split_once('@') {
            Some((who, domain)) if !who.is_empty() && domain.contains('.') => None,
            _ => Some("is not a whole email address: write it as mailto:name@nhs.net"),
        };
    }
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return match url::Url::parse(url) {
            Ok(parsed) => match parsed.host_str() {
                Some(host) if host.contains('.') || host == "localhost" => None,
                _ => Some("has an incomplete web address: check the part after https://"),
            },
            Err(_) => Some("is not a valid web address"),
        };
    }
    if url.starts_with("//") {
        return Some("starts with // : write it in full, starting https://");
    }
    match lower.split_once(':') {
        Some((scheme, _))
            if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphabetic()) =>
        {
            Some("is not a web or email link, and will be removed when published")
        }
        _ => Some(
            "does not start with https://, so it points to a page on this site: write the address in full",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::posts::PostFields;

    #[test]
    fn nhs_number_check_digit() {
        // Published test numbers that pass, and near misses that do not.
        assert!(is_valid_nhs_number("9434765919"));
        assert!(is_valid_nhs_number("943 476 5919"));
        assert!(is_valid_nhs_number("401-023-2137"));
        assert!(!is_valid_nhs_number("9434765918"));
        assert!(!is_valid_nhs_number("1111111111"));
        assert!(!is_valid_nhs_number("943476591"));
        // A first nine digits giving 10 as the check can never be an NHS number.
        assert!(!is_valid_nhs_number("0000000060"));
    }

    #[test]
    fn identifiers_are_found_conservatively() {
        let text = "Patient 943 476 5919 was seen. Call 0113 243 3144. Order 1234567890.";
        let found = identifiers(text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].message.contains("943 476 5919"));
        assert_eq!(
            identifiers("Hospital number: RX12345 and MRN 7654321").len(),
            2
        );
        assert_eq!(
            identifiers("DOB 12/03/1954. She was born on 4 May 1970.").len(),
            2
        );
        assert_eq!(
            identifiers("We met Mrs Jane Brown, 12/03/1954, today.").len(),
            1
        );
        assert!(identifiers("On 12/03/2025 Jane Smith opened ward 7.").is_empty());
        assert!(identifiers("We saw 1,234 patients in 2025.").is_empty());
    }

    #[test]
    fn syllables_and_score() {
        assert_eq!(syllables_in("ward"), 1);
        assert_eq!(syllables_in("nurses"), 2);
        assert_eq!(syllables_in("hospital"), 3);
        assert_eq!(syllables_in("table"), 2);
        assert_eq!(syllables_in("multidisciplinary"), 7);
        let easy = readability(&["The team was proud. We all had fun.".to_owned()]).expect("score");
        assert!(easy.score > 90.0, "{easy:?}");
        assert_eq!((easy.words, easy.sentences), (8, 2));
        let hard = readability(&["Multidisciplinary organisational reconfiguration necessitates comprehensive stakeholder engagement, notwithstanding considerable operational complexity and interdependencies across integrated care systems, particularly regarding commissioning arrangements, governance accountabilities and strategic transformation programmes throughout the region.".to_owned()]).expect("score");
        assert!(!hard.is_plain(), "{hard:?}");
        assert_eq!(hard.long_sentences.len(), 1);
        assert!(hard.long_words.contains(&"multidisciplinary".to_owned()));
        assert!(readability(&[String::new()]).is_none());
    }

    #[test]
    fn link_formats() {
        assert_eq!(link_problem("https://www.nhs.uk/conditions"), None);
        assert_eq!(link_problem("/@ceo/our-plan"), None);
        assert_eq!(link_problem("mailto:jane@nhs.net"), None);
        assert!(link_problem("www.nhs.uk").is_some());
        assert!(link_problem("https://nhs").is_some());
        assert!(link_problem("htps//nhs.uk").is_some());
        assert!(link_problem("javascript:alert(1)").is_some());
        assert!(link_problem("mailto:jane").is_some());
        assert!(link_problem("").is_some());
        let found = links("See [the plan](www.example.nhs.uk/plan) and [NHS](https://www.nhs.uk).");
        assert_eq!(found.len(), 1);
        assert!(found[0].message.contains("the plan"));
    }

    #[test]
    fn malformed_mentions_warn() {
        let found = mentions("Thanks @jane@nhs.net and @bob@nhs, and email carol@nhs.net.");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].kind, WarningKind::Mention);
        assert!(
            found[0].message.contains("“@bob@nhs”"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn report_combines_everything() {
        let input = PostInput::parse(&PostFields {
            title: "Winter",
            body: "## Plan\n\nThe image ![](/media/x.png) needs words. NHS number 9434765919.",
            ..PostFields::default()
        })
        .expect("valid");
        let report = check(&input);
        assert_eq!(report.blocking.len(), 1);
        assert_eq!(report.warnings.len(), 1);
        assert!(report.readability.is_some());
    }
}
