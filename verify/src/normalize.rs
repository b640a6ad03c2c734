//! Opt-in text normalisation before tokenization (spec §5.1): undoes
//! invisible edits, the characters a distiller can add to or swap into a
//! marked answer without changing how it reads.
//!
//! A marked answer with every space replaced by U+00A0 (no-break space),
//! or with U+200B (zero-width space) between words, renders the same but
//! tokenizes to other ids, and its log10 p falls from about −22 to about
//! 0. [`Normalization::Invisible`] maps every such text back:
//!
//! - removed: the Default_Ignorable_Code_Point characters (zero-width
//!   spaces and joiners, bidirectional controls, soft hyphen, word joiner,
//!   invisible operators, variation selectors, tags, Hangul fillers, BOM),
//!   listed in [`REMOVED`];
//! - replaced by U+0020: the other space separators (category Zs: no-break,
//!   en/em/thin/hair spaces, narrow no-break, ideographic), [`SPACES`];
//! - replaced by U+000A: U+0085, U+2028 and U+2029, [`LINE_BREAKS`].
//!
//! The set is a closed table fixed by the spec, not a Unicode property
//! looked up at run time, so two implementations on different Unicode
//! versions normalise alike. NFKC is deliberately not applied: it rewrites
//! characters that a model writes itself and a reader sees (full-width
//! CJK punctuation such as "，" becomes ",", "…" becomes "...", "²"
//! becomes "2"), which would unmark honest answers, and its tables change
//! with the Unicode version. Normalisation is a fixed function of the text
//! alone, independent of any key, so the null distribution of every test
//! is unchanged (measured in `bench/RESULTS.md`, issue #14).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// Inclusive code point ranges removed by [`Normalization::Invisible`]:
/// Default_Ignorable_Code_Point of Unicode 16.0 (DerivedCoreProperties),
/// assigned or not.
pub const REMOVED: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),   // soft hyphen
    (0x034F, 0x034F),   // combining grapheme joiner
    (0x061C, 0x061C),   // Arabic letter mark
    (0x115F, 0x1160),   // Hangul choseong/jungseong fillers
    (0x17B4, 0x17B5),   // Khmer inherent vowels
    (0x180B, 0x180F),   // Mongolian variation selectors, vowel separator
    (0x200B, 0x200F),   // zero-width space, ZWNJ, ZWJ, LRM, RLM
    (0x202A, 0x202E),   // bidirectional embeddings and overrides
    (0x2060, 0x206F),   // word joiner, invisible operators, isolates
    (0x3164, 0x3164),   // Hangul filler
    (0xFE00, 0xFE0F),   // variation selectors
    (0xFEFF, 0xFEFF),   // zero-width no-break space (BOM)
    (0xFFA0, 0xFFA0),   // half-width Hangul filler
    (0xFFF0, 0xFFF8),   // unassigned specials
    (0x1BCA0, 0x1BCA3), // shorthand format controls
    (0x1D173, 0x1D17A), // musical symbol format controls
    (0xE0000, 0xE0FFF), // tags, variation selectors supplement
];

/// Code points replaced by U+0020 under [`Normalization::Invisible`]: the
/// space separators (Zs) other than U+0020 itself, Unicode 16.0.
pub const SPACES: &[u32] = &[
    0x00A0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009,
    0x200A, 0x202F, 0x205F, 0x3000,
];

/// Code points replaced by U+000A under [`Normalization::Invisible`]: next
/// line, line separator, paragraph separator.
pub const LINE_BREAKS: &[u32] = &[0x0085, 0x2028, 0x2029];

/// How a text is normalised before it is tokenized (spec §5.1). Recorded
/// in reports as the `normalize` parameter, by [`name`](Self::name)
/// (absent means `none`); deserialised from that name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum Normalization {
    /// The text as given (the default).
    #[default]
    None,
    /// Invisible edits undone: [`REMOVED`] dropped, [`SPACES`] to U+0020,
    /// [`LINE_BREAKS`] to U+000A.
    Invisible,
}

/// A text after normalisation, and how many code points were removed or
/// replaced to get it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Normalized<'a> {
    /// The normalised text (borrowed when nothing changed).
    pub text: Cow<'a, str>,
    /// Code points removed or replaced (0 when nothing changed).
    pub edits: usize,
}

/// What the [`Invisible`](Normalization::Invisible) rule does to one code point.
enum Action {
    Keep,
    Remove,
    Replace(char),
}

fn action(c: char) -> Action {
    let u = c as u32;
    // Every listed code point is at or above U+0085.
    if u < 0x85 {
        return Action::Keep;
    }
    if SPACES.contains(&u) {
        Action::Replace(' ')
    } else if LINE_BREAKS.contains(&u) {
        Action::Replace('\n')
    } else if REMOVED.iter().any(|&(lo, hi)| (lo..=hi).contains(&u)) {
        Action::Remove
    } else {
        Action::Keep
    }
}

impl Normalization {
    /// Every normalisation, in the order `--help` lists them.
    pub const ALL: [Normalization; 2] = [Normalization::None, Normalization::Invisible];

    /// The name reports and flags use: `none` or `invisible`.
    pub fn name(self) -> &'static str {
        match self {
            Normalization::None => "none",
            Normalization::Invisible => "invisible",
        }
    }

    /// Whether this changes any text at all.
    pub fn is_none(self) -> bool {
        self == Normalization::None
    }

    /// Normalises `text`: O(len), borrowing `text` when nothing changes
    /// (always for [`None`](Self::None) and for ASCII text).
    pub fn apply(self, text: &str) -> Normalized<'_> {
        let unchanged = Normalized {
            text: Cow::Borrowed(text),
            edits: 0,
        };
        if self.is_none() || text.is_ascii() {
            return unchanged;
        }
        let first = text
            .char_indices()
            .find(|&(_, c)| !matches!(action(c), Action::Keep));
        let Some((at, _)) = first else {
            return unchanged;
        };
        let mut out = String::with_capacity(text.len());
        out.push_str(&text[..at]);
        let mut edits = 0;
        for c in text[at..].chars() {
            match action(c) {
                Action::Keep => out.push(c),
                Action::Remove => edits += 1,
                Action::Replace(r) => {
                    out.push(r);
                    edits += 1;
                }
            }
        }
        Normalized {
            text: Cow::Owned(out),
            edits,
        }
    }
}

impl Normalization {
    /// As [`apply`](Self::apply) on an owned text: the normalised text
    /// (`text` itself when nothing changes) and the number of edits.
    pub fn apply_owned(self, text: String) -> (String, usize) {
        let n = self.apply(&text);
        match n.text {
            Cow::Borrowed(_) => (text, 0),
            Cow::Owned(changed) => (changed, n.edits),
        }
    }
}

impl fmt::Display for Normalization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A normalisation name that is not one of [`Normalization::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown normalization {given:?}: expected one of none, invisible")]
pub struct UnknownNormalization {
    /// The name given.
    pub given: String,
}

impl TryFrom<String> for Normalization {
    type Error = UnknownNormalization;

    fn try_from(s: String) -> Result<Normalization, UnknownNormalization> {
        s.parse()
    }
}

impl FromStr for Normalization {
    type Err = UnknownNormalization;

    fn from_str(s: &str) -> Result<Normalization, UnknownNormalization> {
        Normalization::ALL
            .into_iter()
            .find(|n| n.name() == s)
            .ok_or_else(|| UnknownNormalization {
                given: s.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(s: &str) -> (String, usize) {
        let n = Normalization::Invisible.apply(s);
        (n.text.into_owned(), n.edits)
    }

    #[test]
    fn invisible_edits_are_undone() {
        let marked = "The quick brown fox jumps over the lazy dog.";
        let nbsp = marked.replace(' ', "\u{a0}");
        assert_eq!(inv(&nbsp), (marked.to_string(), 8));
        let zwsp = marked.replace(' ', " \u{200b}");
        assert_eq!(inv(&zwsp), (marked.to_string(), 8));
        assert_eq!(
            inv("a\u{2028}b\u{2029}c\u{85}d\u{3000}e\u{feff}"),
            ("a\nb\nc\nd e".to_string(), 5)
        );
        assert_eq!(inv("tag\u{e0041}\u{e007f}s"), ("tags".to_string(), 2));
    }

    #[test]
    fn visible_text_is_left_alone() {
        for s in [
            "plain ASCII, tabs\tand\r\nnewlines",
            "全角の句読点，「引用」。",
            "Ünïcödé … ² ﬁ café",
            "emoji 😀 and CJK 中文",
            "",
        ] {
            let n = Normalization::Invisible.apply(s);
            assert!(matches!(n.text, Cow::Borrowed(_)), "{s:?}");
            assert_eq!(n.edits, 0);
        }
        // An emoji ZWJ sequence loses its joiner and presentation selector:
        // the documented price of removing every zero-width character.
        assert_eq!(inv("👩\u{200d}💻 ❤\u{fe0f}"), ("👩💻 ❤".to_string(), 2));
    }

    #[test]
    fn none_changes_nothing() {
        let s = "a\u{a0}b\u{200b}";
        let n = Normalization::None.apply(s);
        assert_eq!((n.text.as_ref(), n.edits), (s, 0));
    }

    #[test]
    fn tables_are_sorted_disjoint_and_never_ascii() {
        for w in REMOVED.windows(2) {
            assert!(w[0].1 < w[1].0);
        }
        for &(lo, hi) in REMOVED {
            assert!(0x85 <= lo && lo <= hi && hi <= 0x10FFFF);
            for &u in SPACES.iter().chain(LINE_BREAKS) {
                assert!(!(lo..=hi).contains(&u), "{u:X}");
            }
        }
        assert!(SPACES.iter().chain(LINE_BREAKS).all(|&u| u >= 0x85));
    }

    #[test]
    fn names_round_trip_and_unknown_ones_are_refused() {
        for n in Normalization::ALL {
            assert_eq!(n.name().parse::<Normalization>(), Ok(n));
        }
        let e = "nfkc".parse::<Normalization>().unwrap_err();
        assert!(e.to_string().contains("\"nfkc\""), "{e}");
    }
}
