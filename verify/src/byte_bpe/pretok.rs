//! The supported pre-tokenizers, hand-written: each splits a piece of text
//! into the pre-tokens the reference's regex finds, with its
//! leftmost-first alternation and backtracking worked out per rule.
//!
//! - GPT-2 (`ByteLevel` with `use_regex`):
//!   `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
//! - smollm (llama.cpp's rule: `Digits` with single digits, then GPT-2):
//!   every `char::is_numeric` character alone, GPT-2 on the text between.
//! - qwen2 (llama.cpp's rule, a `Split` regex):
//!   `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
//!
//! The regexes only ever see one piece at a time (text between added
//! tokens, or between digits for smollm), so the end of a piece is the end
//! of the input for `(?!\S)`.

use super::classes::{self, LETTER, NUMBER, NUMERIC, SPACE};

/// llama.cpp's qwen2 regex, as `provmark` writes it into a `Split`
/// pre-tokenizer (only this exact pattern is recognised).
pub const QWEN2_REGEX: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Which pre-tokenizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// GPT-2's regex.
    Gpt2,
    /// Single digits, then GPT-2's regex between them.
    Smollm,
    /// llama.cpp's qwen2 regex.
    Qwen2,
}

impl Kind {
    /// The llama.cpp name (`tokenizer.ggml.pre`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Gpt2 => "gpt2",
            Kind::Smollm => "smollm",
            Kind::Qwen2 => "qwen2",
        }
    }
}

/// What a character is to the regexes: exactly one of these.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cat {
    Letter,
    Number,
    Space,
    /// `[^\s\p{L}\p{N}]`
    Other,
}

/// Class bits of the ASCII characters.
const ASCII: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        let b = i as u8;
        t[i] = if b.is_ascii_alphabetic() {
            LETTER
        } else if b.is_ascii_digit() {
            NUMBER | NUMERIC
        } else if matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r') {
            SPACE
        } else {
            0
        };
        i += 1;
    }
    t
};

/// The class bits and byte length of the character at byte `i` of `s`
/// (a character boundary before its end).
#[inline]
fn class_at(s: &str, i: usize) -> (u8, usize) {
    let b = s.as_bytes()[i];
    if b < 0x80 {
        return (ASCII[b as usize], 1);
    }
    let c = s[i..]
        .chars()
        .next()
        .expect("i is a boundary before the end");
    (classes::of(c), c.len_utf8())
}

#[inline]
fn cat(class: u8) -> Cat {
    if class & LETTER != 0 {
        Cat::Letter
    } else if class & NUMBER != 0 {
        Cat::Number
    } else if class & SPACE != 0 {
        Cat::Space
    } else {
        Cat::Other
    }
}

/// The end of the run of characters of category `c` starting at `i`.
#[inline]
fn run(s: &str, mut i: usize, c: Cat) -> usize {
    while i < s.len() {
        let (class, n) = class_at(s, i);
        if cat(class) != c {
            break;
        }
        i += n;
    }
    i
}

/// The category of the character at `i`, if `i` is before the end.
#[inline]
fn cat_at(s: &str, i: usize) -> Option<Cat> {
    (i < s.len()).then(|| cat(class_at(s, i).0))
}

/// `\s+(?!\S)|\s+` at `i` (a white-space character): the run to the end
/// of the piece, else the run less its last character when that leaves
/// one, else the single character.
#[inline]
fn spaces(s: &str, i: usize) -> usize {
    let mut j = i;
    let mut last = i;
    while j < s.len() {
        let (class, n) = class_at(s, j);
        if class & SPACE == 0 {
            break;
        }
        last = j;
        j += n;
    }
    if j == s.len() || last == i {
        j
    } else {
        last
    }
}

/// GPT-2's contractions (lower case) at `i`, an apostrophe.
#[inline]
fn gpt2_contraction(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i + 1)? {
        b's' | b't' | b'm' | b'd' => Some(i + 2),
        b'r' | b'v' if b.get(i + 2) == Some(&b'e') => Some(i + 3),
        b'l' if b.get(i + 2) == Some(&b'l') => Some(i + 3),
        _ => None,
    }
}

/// The end of GPT-2's match at `i`.
#[inline]
fn gpt2_match(s: &str, i: usize) -> usize {
    let b = s.as_bytes();
    if b[i] == b'\'' {
        if let Some(end) = gpt2_contraction(b, i) {
            return end;
        }
    }
    if b[i] == b' ' {
        match cat_at(s, i + 1) {
            Some(Cat::Space) | None => {}
            Some(c) => return run(s, i + 1, c),
        }
    }
    match cat(class_at(s, i).0) {
        Cat::Space => spaces(s, i),
        c => run(s, i, c),
    }
}

/// Calls `f` with the byte range of each GPT-2 pre-token of `s`.
pub fn gpt2(s: &str, base: usize, f: &mut impl FnMut(usize, usize)) {
    let mut i = 0;
    while i < s.len() {
        let end = gpt2_match(s, i);
        f(base + i, base + end);
        i = end;
    }
}

/// Calls `f` with the byte range of each smollm pre-token of `s`.
pub fn smollm(s: &str, base: usize, f: &mut impl FnMut(usize, usize)) {
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        let (class, n) = class_at(s, i);
        if class & NUMERIC != 0 {
            if start < i {
                gpt2(&s[start..i], base + start, f);
            }
            f(base + i, base + i + n);
            start = i + n;
        }
        i += n;
    }
    if start < s.len() {
        gpt2(&s[start..], base + start, f);
    }
}

/// qwen2's contractions (either case) at `i`, an apostrophe.
#[inline]
fn qwen2_contraction(b: &[u8], i: usize) -> Option<usize> {
    let lower = |k: usize| b.get(k).map(u8::to_ascii_lowercase);
    match lower(i + 1)? {
        b's' | b't' | b'm' | b'd' => Some(i + 2),
        b'r' | b'v' if lower(i + 2) == Some(b'e') => Some(i + 3),
        b'l' if lower(i + 2) == Some(b'l') => Some(i + 3),
        _ => None,
    }
}

/// The end of qwen2's match at `i`.
#[inline]
fn qwen2_match(s: &str, i: usize) -> usize {
    let b = s.as_bytes();
    if b[i] == b'\'' {
        if let Some(end) = qwen2_contraction(b, i) {
            return end;
        }
    }
    let (class, n) = class_at(s, i);
    let c = cat(class);
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if c == Cat::Letter {
        return run(s, i, Cat::Letter);
    }
    if c != Cat::Number && b[i] != b'\r' && b[i] != b'\n' && cat_at(s, i + n) == Some(Cat::Letter) {
        return run(s, i + n, Cat::Letter);
    }
    // \p{N}
    if c == Cat::Number {
        return i + n;
    }
    //  ?[^\s\p{L}\p{N}]+[\r\n]*
    let start = if b[i] == b' ' && cat_at(s, i + 1) == Some(Cat::Other) {
        Some(i + 1)
    } else if c == Cat::Other {
        Some(i)
    } else {
        None
    };
    if let Some(start) = start {
        let mut end = run(s, start, Cat::Other);
        while end < b.len() && (b[end] == b'\r' || b[end] == b'\n') {
            end += 1;
        }
        return end;
    }
    // \s*[\r\n]+ : up to and including the run's last CR or LF.
    let mut j = i;
    let mut newline = None;
    while j < s.len() {
        let (class, n) = class_at(s, j);
        if class & SPACE == 0 {
            break;
        }
        if b[j] == b'\r' || b[j] == b'\n' {
            newline = Some(j + 1);
        }
        j += n;
    }
    if let Some(end) = newline {
        return end;
    }
    spaces(s, i)
}

/// Calls `f` with the byte range of each qwen2 pre-token of `s`.
pub fn qwen2(s: &str, base: usize, f: &mut impl FnMut(usize, usize)) {
    let mut i = 0;
    while i < s.len() {
        let end = qwen2_match(s, i);
        f(base + i, base + end);
        i = end;
    }
}

/// Calls `f` with the byte range (offset by `base`) of each pre-token of
/// `s` under `kind`.
pub fn split(kind: Kind, s: &str, base: usize, f: &mut impl FnMut(usize, usize)) {
    match kind {
        Kind::Gpt2 => gpt2(s, base, f),
        Kind::Smollm => smollm(s, base, f),
        Kind::Qwen2 => qwen2(s, base, f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(kind: Kind, s: &str) -> Vec<&str> {
        let mut out = Vec::new();
        split(kind, s, 0, &mut |a, b| out.push(&s[a..b]));
        out
    }

    #[test]
    fn gpt2_rules() {
        assert_eq!(
            pieces(Kind::Gpt2, "Hello world's  end\n\n  x 12ab"),
            ["Hello", " world", "'s", " ", " end", "\n\n ", " x", " 12", "ab"]
        );
        assert_eq!(pieces(Kind::Gpt2, "a  "), ["a", "  "]);
        assert_eq!(pieces(Kind::Gpt2, "?'s"), ["?'", "s"]);
    }

    #[test]
    fn smollm_splits_digits_first() {
        assert_eq!(pieces(Kind::Smollm, "ab  123"), ["ab", "  ", "1", "2", "3"]);
    }

    #[test]
    fn qwen2_rules() {
        assert_eq!(
            pieces(Kind::Qwen2, "(hello 'S x.\n\n  \n y12"),
            ["(hello", " '", "S", " x", ".\n\n", "  \n", " y", "1", "2"]
        );
    }
}
