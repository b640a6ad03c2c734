//! The character classes the supported pre-tokenizers split on, taken from
//! the same Unicode tables as the reference tokenizer's regex engine.
//!
//! `\p{L}`, `\p{N}` and `\s` come from `regex-syntax` (the tables
//! `fancy-regex`, the reference's regex backend, compiles its classes
//! with), and "numeric" is Rust's `char::is_numeric` (what the reference's
//! `Digits` pre-tokenizer calls), so a character new in one Unicode version
//! is classified exactly as the reference classifies it.

use std::sync::LazyLock;

use regex_syntax::hir::{Class, HirKind};

/// `\p{L}`: a letter.
pub const LETTER: u8 = 1;
/// `\p{N}`: a number.
pub const NUMBER: u8 = 2;
/// `\s`: Unicode White_Space.
pub const SPACE: u8 = 4;
/// `char::is_numeric` (the `Digits` pre-tokenizer's test).
pub const NUMERIC: u8 = 8;

/// Classes of the Basic Multilingual Plane, one byte per code point, and
/// the ranges of the three regex classes for the planes above it.
struct Tables {
    bmp: Box<[u8]>,
    letter: Vec<(u32, u32)>,
    number: Vec<(u32, u32)>,
    space: Vec<(u32, u32)>,
}

/// The inclusive code point ranges of a one-class regex.
fn ranges(pattern: &str) -> Vec<(u32, u32)> {
    let hir = regex_syntax::Parser::new()
        .parse(pattern)
        .expect("a fixed, valid class");
    match hir.kind() {
        HirKind::Class(Class::Unicode(c)) => c
            .ranges()
            .iter()
            .map(|r| (r.start() as u32, r.end() as u32))
            .collect(),
        other => panic!("{pattern} is not a Unicode class: {other:?}"),
    }
}

fn contains(ranges: &[(u32, u32)], c: u32) -> bool {
    ranges
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

static TABLES: LazyLock<Tables> = LazyLock::new(|| {
    let letter = ranges(r"\p{L}");
    let number = ranges(r"\p{N}");
    let space = ranges(r"\s");
    let mut bmp = vec![0u8; 0x1_0000].into_boxed_slice();
    for (set, bit) in [(&letter, LETTER), (&number, NUMBER), (&space, SPACE)] {
        for &(lo, hi) in set.iter() {
            for c in lo..=hi.min(0xFFFF) {
                bmp[c as usize] |= bit;
            }
        }
    }
    for (c, class) in bmp.iter_mut().enumerate() {
        if char::from_u32(c as u32).is_some_and(char::is_numeric) {
            *class |= NUMERIC;
        }
    }
    Tables {
        bmp,
        letter,
        number,
        space,
    }
});

/// The class bits of `c`.
#[inline]
pub fn of(c: char) -> u8 {
    let t = &*TABLES;
    let u = c as u32;
    if u < 0x1_0000 {
        return t.bmp[u as usize];
    }
    let mut class = 0;
    if contains(&t.letter, u) {
        class |= LETTER;
    }
    if contains(&t.number, u) {
        class |= NUMBER;
    }
    if contains(&t.space, u) {
        class |= SPACE;
    }
    if c.is_numeric() {
        class |= NUMERIC;
    }
    class
}

/// Builds the tables now (so that the first text does not pay for it).
pub fn init() {
    LazyLock::force(&TABLES);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_of_known_characters() {
        assert_eq!(of('a'), LETTER);
        assert_eq!(of('é'), LETTER);
        assert_eq!(of('日'), LETTER);
        assert_eq!(of('7'), NUMBER | NUMERIC);
        assert_eq!(of('²'), NUMBER | NUMERIC);
        assert_eq!(of(' '), SPACE);
        assert_eq!(of('\u{a0}'), SPACE);
        assert_eq!(of('\u{3000}'), SPACE);
        assert_eq!(of('\u{200b}'), 0, "zero-width space is not White_Space");
        assert_eq!(of('.'), 0);
        assert_eq!(of('😀'), 0);
        assert_eq!(of('𝐀'), LETTER);
        assert_eq!(of('𝟙'), NUMBER | NUMERIC);
    }
}
