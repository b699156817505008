//! Word-level differences between two texts, for the history pages: what was added and
//! what was removed, in reading order.
//!
//! `similar` does the diffing (Myers' algorithm with a deadline, so a pathological pair
//! of long texts cannot hold a request for long).

use std::time::Duration;

use similar::{ChangeTag, TextDiff};

/// Longest a diff may take before it settles for a coarser answer.
const DEADLINE: Duration = Duration::from_millis(500);

/// One run of text in a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// In both texts.
    Same(String),
    /// Only in the newer text.
    Added(String),
    /// Only in the older text.
    Removed(String),
}

/// The pieces that turn `old` into `new`, word by word (whitespace kept with the words,
/// so joining the `Same` and `Added` pieces gives `new` back).
pub fn words(old: &str, new: &str) -> Vec<Piece> {
    let diff = TextDiff::configure().timeout(DEADLINE).diff_words(old, new);
    let mut pieces: Vec<Piece> = Vec::new();
    for change in diff.iter_all_changes() {
        let text = change.value();
        // Runs of one kind are joined, so a changed sentence reads as one piece.
        match (change.tag(), pieces.last_mut()) {
            (ChangeTag::Equal, Some(Piece::Same(s)))
            | (ChangeTag::Insert, Some(Piece::Added(s)))
            | (ChangeTag::Delete, Some(Piece::Removed(s))) => s.push_str(text),
            (ChangeTag::Equal, _) => pieces.push(Piece::Same(text.to_owned())),
            (ChangeTag::Insert, _) => pieces.push(Piece::Added(text.to_owned())),
            (ChangeTag::Delete, _) => pieces.push(Piece::Removed(text.to_owned())),
        }
    }
    pieces
}

/// How many words were added and removed.
pub fn word_counts(old: &str, new: &str) -> (usize, usize) {
    let mut added = 0;
    let mut removed = 0;
    for piece in words(old, new) {
        match piece {
            Piece::Added(s) => added += s.split_whitespace().count(),
            Piece::Removed(s) => removed += s.split_whitespace().count(),
            Piece::Same(_) => {}
        }
    }
    (added, removed)
}

/// Whether the pieces change anything.
pub fn changed(pieces: &[Piece]) -> bool {
    pieces.iter().any(|p| !matches!(p, Piece::Same(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_show_what_changed() {
        let pieces = words(
            "We will open ward 7 today.",
            "We will open wards 7 and 8 today.",
        );
        assert_eq!(
            pieces,
            [
                Piece::Same("We will open ".into()),
                Piece::Removed("ward".into()),
                Piece::Added("wards".into()),
                Piece::Same(" 7 ".into()),
                Piece::Added("and 8 ".into()),
                Piece::Same("today.".into()),
            ]
        );
        assert_eq!(word_counts("a b c", "a x c d"), (2, 1));
        assert!(!changed(&words("same text", "same text")));
    }

    #[test]
    fn new_text_is_the_same_and_added_pieces() {
        let old = "One.\n\nTwo three.";
        let new = "One!\n\nTwo, three and four.";
        let rebuilt: String = words(old, new)
            .into_iter()
            .filter_map(|p| match p {
                Piece::Same(s) | Piece::Added(s) => Some(s),
                Piece::Removed(_) => None,
            })
            .collect();
        assert_eq!(rebuilt, new);
    }
}
