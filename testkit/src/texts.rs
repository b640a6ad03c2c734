//! Random texts for checking a tokenizer against the reference: code, prose
//! from the bundled corpus, CJK, emoji sequences, digits, white-space runs
//! (CR LF, tabs, no-break and ideographic spaces), mixed scripts, combining
//! marks, contractions in any case, added-token text and its fragments,
//! long words, and any Unicode scalar value, from a seeded generator.

use rand_chacha::rand_core::RngCore;
use rand_chacha::ChaCha8Rng;

/// Added-token text and fragments of it.
const SPECIAL: &[&str] = &[
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|im",
    "<think>",
    "</think>",
    "<|",
    "|>",
    "<|im_start|>user\n",
];

const CODE: &[&str] = &[
    "fn main() {\n\tlet x = 42;\r\n}\n",
    "    def f(self, x):\n        return x**2  # square\n",
    "if (a[i] != b[j]) { return -1; }",
    "SELECT * FROM t WHERE id = 'x''s';",
    "x=1;y=2.50e-3;z=0x1F",
    "<div class=\"a\">&nbsp;</div>",
    "\t\t// TODO: fix\n\n\n",
    "let s = \"it's\"; // don't",
    "    \n    \n\t \r\n",
    "a_b-c.d/e\\f",
];

const CONTRACTIONS: &[&str] = &[
    "'s",
    "'S",
    "'t",
    "'T",
    "'re",
    "'RE",
    "'Re",
    "'rE",
    "'ve",
    "'VE",
    "'m",
    "'M",
    "'ll",
    "'LL",
    "'Ll",
    "'d",
    "'D",
    "'",
    "''",
    "\u{2019}s",
    "n't",
    "'x",
    "'sam",
];

const SPACES: &[&str] = &[
    " ", " ", " ", "  ", "\t", "\n", "\n", "\r\n", "\r", "\u{a0}", "\u{3000}", "\u{2028}",
    "\u{85}", "\u{b}", "\u{c}", "\u{200b}", "\u{2009}", "\u{feff}", "\u{1680}",
];

const PUNCT: &[u8] = b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// Characters of interesting blocks: (first, last) code points.
const BLOCKS: &[(u32, u32)] = &[
    (0x4E00, 0x9FFF),   // CJK
    (0x3040, 0x30FF),   // kana
    (0xAC00, 0xD7A3),   // Hangul
    (0x0400, 0x04FF),   // Cyrillic
    (0x0590, 0x06FF),   // Hebrew, Arabic
    (0x0900, 0x097F),   // Devanagari
    (0x0E00, 0x0E7F),   // Thai
    (0x0300, 0x036F),   // combining marks
    (0x1F300, 0x1FAFF), // emoji
    (0x1D400, 0x1D7FF), // mathematical letters and digits
    (0x2150, 0x218F),   // number forms
    (0x00A0, 0x00FF),   // Latin-1
    (0x0660, 0x0669),   // Arabic-Indic digits
    (0xFF00, 0xFFEF),   // full-width forms
    (0x0000, 0x001F),   // controls
    (0x2000, 0x206F),   // general punctuation, format characters
    (0x10000, 0x1007F), // Linear B
    (0x1E900, 0x1E95F), // Adlam
];

const EMOJI: &[&str] = &[
    "👩\u{200d}👩\u{200d}👧",
    "👍🏽",
    "🇫🇷",
    "❤\u{fe0f}",
    "1\u{fe0f}\u{20e3}",
    "e\u{301}",
    "\u{915}\u{94d}\u{937}",
];

fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[T]) -> T {
    items[rng.next_u32() as usize % items.len()]
}

fn below(rng: &mut ChaCha8Rng, n: u32) -> u32 {
    rng.next_u32() % n
}

fn push_char(s: &mut String, c: u32) {
    if let Some(c) = char::from_u32(c) {
        s.push(c);
    }
}

/// Appends one random piece to `s`; `corpus` supplies real prose and code.
fn piece(rng: &mut ChaCha8Rng, corpus: &str, s: &mut String) {
    match below(rng, 16) {
        0..=3 => {
            // A stretch of the corpus.
            let len = 1 + below(rng, 120) as usize;
            let mut a = below(rng, (corpus.len() - len) as u32) as usize;
            while !corpus.is_char_boundary(a) {
                a -= 1;
            }
            let mut b = (a + len).min(corpus.len());
            while !corpus.is_char_boundary(b) {
                b -= 1;
            }
            s.push_str(&corpus[a..b]);
        }
        4 => s.push_str(pick(rng, CODE)),
        5 => s.push_str(pick(rng, CONTRACTIONS)),
        6 => {
            for _ in 0..1 + below(rng, 6) {
                s.push_str(pick(rng, SPACES));
            }
        }
        7 => {
            for _ in 0..1 + below(rng, 14) {
                s.push(char::from(b'0' + below(rng, 10) as u8));
                if below(rng, 6) == 0 {
                    s.push(pick(rng, &[',', '.', ' ', '_']));
                }
            }
        }
        8 => {
            let (lo, hi) = pick(rng, BLOCKS);
            for _ in 0..1 + below(rng, 8) {
                push_char(s, lo + below(rng, hi - lo + 1));
            }
        }
        9 => s.push_str(pick(rng, EMOJI)),
        10 => {
            for _ in 0..1 + below(rng, 4) {
                s.push(char::from(pick(rng, PUNCT)));
            }
        }
        11 => s.push_str(pick(rng, SPECIAL)),
        12 => {
            // Any scalar value, mostly from the lower planes.
            let top = pick(rng, &[0x80u32, 0x800, 0x1_0000, 0x11_0000]);
            for _ in 0..1 + below(rng, 4) {
                push_char(s, below(rng, top));
            }
        }
        13 => {
            // A long word, number or white-space run.
            let len = 20 + below(rng, 400);
            let unit = pick(
                rng,
                &["a", "Zz", "é", "9", " ", "\n", "=", "日", "\t ", "😀"],
            );
            for _ in 0..len {
                s.push_str(unit);
            }
        }
        14 => {
            // A letter with combining marks.
            s.push(char::from(b'a' + below(rng, 26) as u8));
            for _ in 0..1 + below(rng, 3) {
                push_char(s, 0x300 + below(rng, 0x70));
            }
        }
        _ => {
            // Random ASCII, printable and not.
            for _ in 0..1 + below(rng, 10) {
                s.push(char::from(below(rng, 128) as u8));
            }
        }
    }
}

/// A random text of 1 to `max_pieces` pieces (see the module docs), drawn
/// from `rng`; `corpus` (e.g. [`crate::corpus::docs_corpus`]) supplies the
/// prose and code stretches. Sometimes empty.
pub fn random_text(rng: &mut ChaCha8Rng, corpus: &str, max_pieces: u32) -> String {
    let mut s = String::new();
    if below(rng, 50) == 0 {
        return s;
    }
    for _ in 0..1 + below(rng, max_pieces) {
        piece(rng, corpus, &mut s);
    }
    s
}

/// Asserts that `tok` gives the ids of its reference
/// (`tokens.inner().encode_fast(text, false)`) on `n` random texts drawn
/// from `seed`, and on every fourth text also the reference's ids and byte
/// offsets (`encode(text, false)`) from `encode_with_offsets`; `name`
/// labels failures. Returns the number of tokens compared.
pub fn assert_matches_reference(
    name: &str,
    tok: &provmark_verify::TextTokenizer,
    seed: u64,
    n: usize,
) -> usize {
    use rand_chacha::rand_core::SeedableRng;
    let corpus = crate::corpus::docs_corpus();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let reference = tok.inner();
    let mut tokens = 0;
    for i in 0..n {
        let text = random_text(&mut rng, &corpus, 12);
        let want = reference
            .encode_fast(text.as_str(), false)
            .expect("the reference encodes any text");
        let got = tok.encode(&text).expect("encodes any text");
        assert_eq!(got, want.get_ids(), "{name}: text {i} {text:?}");
        if i % 4 == 0 {
            let want = reference
                .encode(text.as_str(), false)
                .expect("the reference encodes any text");
            let (ids, offsets) = tok.encode_with_offsets(&text).expect("encodes any text");
            assert_eq!(ids, want.get_ids(), "{name}: text {i} {text:?}");
            assert_eq!(
                offsets,
                want.get_offsets(),
                "{name}: offsets of text {i} {text:?}"
            );
        }
        tokens += got.len();
    }
    tokens
}
