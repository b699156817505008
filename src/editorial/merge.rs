//! Three-way merges of text: when two people saved the same draft from the same starting
//! point, both sets of changes are kept where they touch different words, and where they
//! touch the same words the result says so instead of choosing silently.
//!
//! `diffy` does the merge (the diff3 algorithm git uses). It merges lines; prose keeps a
//! whole paragraph on one line, so two people editing different sentences of a paragraph
//! would clash. Each word (and each run of spaces or line breaks) is therefore put on a
//! line of its own before merging, and joined back afterwards: the merge is word by word.

use diffy::{ConflictStyle, MergeOptions};

/// One stretch of a merged text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Agreed: unchanged, or changed by one side only, or changed the same way by both.
    Clean(String),
    /// Both sides changed the same words differently.
    Conflict {
        /// The words as they were in the starting point.
        base: String,
        /// The words as the person saving now wrote them.
        ours: String,
        /// The words as the save that landed first has them.
        theirs: String,
    },
}

/// The outcome of merging one text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// The merged text, in order.
    pub segments: Vec<Segment>,
}

impl Merged {
    /// Whether nothing clashed.
    pub fn is_clean(&self) -> bool {
        self.segments.iter().all(|s| matches!(s, Segment::Clean(_)))
    }

    /// The text with every clash settled in favour of the person saving now (their
    /// version of the clashing words), and everything else merged.
    pub fn with_ours(&self) -> String {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Clean(text) => text.as_str(),
                Segment::Conflict { ours, .. } => ours.as_str(),
            })
            .collect()
    }

    /// The clashes, in order.
    pub fn conflicts(&self) -> Vec<(&str, &str, &str)> {
        self.segments
            .iter()
            .filter_map(|s| match s {
                Segment::Conflict { base, ours, theirs } => {
                    Some((base.as_str(), ours.as_str(), theirs.as_str()))
                }
                Segment::Clean(_) => None,
            })
            .collect()
    }
}

/// Merges `ours` and `theirs`, both edited from `base`, word by word.
pub fn merge(base: &str, ours: &str, theirs: &str) -> Merged {
    // The common cases need no diffing.
    if ours == theirs || theirs == base {
        return clean(ours);
    }
    if ours == base {
        return clean(theirs);
    }
    let (b, o, t) = (encode(base), encode(ours), encode(theirs));
    let mut options = MergeOptions::new();
    options.set_conflict_style(ConflictStyle::Diff3);
    match options.merge(&b, &o, &t) {
        Ok(merged) => clean(&decode_lines(merged.lines())),
        Err(with_markers) => Merged {
            segments: parse_conflicts(&with_markers),
        },
    }
}

fn clean(text: &str) -> Merged {
    Merged {
        segments: vec![Segment::Clean(text.to_owned())],
    }
}

/// Splits text into words and the runs of whitespace between them.
fn tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut last_space: Option<bool> = None;
    for (i, c) in text.char_indices() {
        let space = c.is_whitespace();
        if last_space.is_some_and(|l| l != space) {
            out.push(&text[start..i]);
            start = i;
        }
        last_space = Some(space);
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// One token a line, each starting with `T` (so no token can look like a conflict
/// marker), with backslashes and line breaks escaped.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for token in tokens(text) {
        out.push('T');
        for c in token.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('\n');
    }
    out
}

fn decode_line(line: &str, out: &mut String) {
    let Some(token) = line.strip_prefix('T') else {
        return;
    };
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
}

fn decode_lines<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for line in lines {
        decode_line(line, &mut out);
    }
    out
}

/// Reads diffy's diff3-style output (`<<<<<<<` ours `|||||||` base `=======` theirs
/// `>>>>>>>`) back into segments.
fn parse_conflicts(text: &str) -> Vec<Segment> {
    #[derive(PartialEq)]
    enum Part {
        Clean,
        Ours,
        Base,
        Theirs,
    }
    let mut segments = Vec::new();
    let mut part = Part::Clean;
    let (mut clean_text, mut base, mut ours, mut theirs) =
        (String::new(), String::new(), String::new(), String::new());
    for line in text.lines() {
        if line.starts_with("<<<<<<<") {
            if !clean_text.is_empty() {
                segments.push(Segment::Clean(std::mem::take(&mut clean_text)));
            }
            part = Part::Ours;
        } else if line.starts_with("|||||||") && part == Part::Ours {
            part = Part::Base;
        } else if line.starts_with("=======") && part != Part::Clean {
            part = Part::Theirs;
        } else if line.starts_with(">>>>>>>") && part == Part::Theirs {
            segments.push(Segment::Conflict {
                base: std::mem::take(&mut base),
                ours: std::mem::take(&mut ours),
                theirs: std::mem::take(&mut theirs),
            });
            part = Part::Clean;
        } else {
            let target = match part {
                Part::Clean => &mut clean_text,
                Part::Ours => &mut ours,
                Part::Base => &mut base,
                Part::Theirs => &mut theirs,
            };
            decode_line(line, target);
        }
    }
    if !clean_text.is_empty() {
        segments.push(Segment::Clean(clean_text));
    }
    segments
}

/// Merges two edited lists of tags: each side's additions and removals both apply.
pub fn merge_tags(base: &[String], ours: &[String], theirs: &[String]) -> Vec<String> {
    let key = |t: &String| t.to_lowercase();
    let has = |list: &[String], t: &String| list.iter().any(|x| key(x) == key(t));
    let mut merged: Vec<String> = theirs
        .iter()
        .filter(|t| !has(base, t) || has(ours, t))
        .cloned()
        .collect();
    for tag in ours {
        if !has(base, tag) && !has(&merged, tag) {
            merged.push(tag.clone());
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_to_different_sentences_of_one_paragraph_merge() {
        let base = "We opened ward 7 today. The team worked hard. Thank you all.";
        let ours = "We opened ward 7 on Monday. The team worked hard. Thank you all.";
        let theirs = "We opened ward 7 today. The team worked very hard. Thank you all.";
        let merged = merge(base, ours, theirs);
        assert!(merged.is_clean(), "{merged:?}");
        assert_eq!(
            merged.with_ours(),
            "We opened ward 7 on Monday. The team worked very hard. Thank you all."
        );
    }

    #[test]
    fn paragraphs_and_line_breaks_survive() {
        let base = "First.\n\nSecond \\ slash.\n\nThird.";
        let ours = "First, changed.\n\nSecond \\ slash.\n\nThird.";
        let theirs = "First.\n\nSecond \\ slash.\n\nThird, changed.\n";
        let merged = merge(base, ours, theirs);
        assert_eq!(
            merged.with_ours(),
            "First, changed.\n\nSecond \\ slash.\n\nThird, changed.\n"
        );
    }

    #[test]
    fn the_same_words_changed_differently_is_a_conflict() {
        let base = "We will open ward 7 in May.";
        let ours = "We will open ward 8 in May.";
        let theirs = "We will open ward 9 in May.";
        let merged = merge(base, ours, theirs);
        assert!(!merged.is_clean());
        assert_eq!(merged.conflicts(), [("7", "8", "9")]);
        assert_eq!(merged.with_ours(), ours);
    }

    #[test]
    fn markers_in_the_text_are_only_text() {
        let base = "<<<<<<< a\n=======\n>>>>>>> b";
        let ours = "<<<<<<< a\n=======\n>>>>>>> b and more";
        let theirs = "start <<<<<<< a\n=======\n>>>>>>> b";
        let merged = merge(base, ours, theirs);
        assert!(merged.is_clean());
        assert_eq!(
            merged.with_ours(),
            "start <<<<<<< a\n=======\n>>>>>>> b and more"
        );
    }

    #[test]
    fn tags_merge_both_sides_changes() {
        let list = |s: &[&str]| s.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>();
        let merged = merge_tags(
            &list(&["Winter", "NHS"]),
            &list(&["Winter", "NHS", "Wards"]),
            &list(&["Winter", "Staff"]),
        );
        assert_eq!(merged, list(&["Winter", "Staff", "Wards"]));
    }
}
