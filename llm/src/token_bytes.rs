//! The bytes of one token, for log-probability reports: a byte-level BPE
//! vocabulary writes each byte as one printable character (GPT-2's
//! table); this maps them back.

use tokenizers::Tokenizer;

/// GPT-2's byte ↔ character table: printable Latin-1 bytes stand for
/// themselves, the other 68 bytes for U+0100 onwards, in byte order.
fn byte_of(c: char) -> Option<u8> {
    let printable = |b: u32| {
        (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b)
    };
    let code = c as u32;
    if printable(code) {
        return Some(code as u8);
    }
    let offset = code.checked_sub(0x100)?;
    (0u32..256)
        .filter(|&b| !printable(b))
        .nth(offset as usize)
        .map(|b| b as u8)
}

/// The bytes token `id` stands for: its vocabulary string mapped back
/// through the byte-level table; added tokens (e.g. `<|im_end|>`) and
/// characters outside the table as their UTF-8. Empty for an unknown id.
pub fn token_bytes(tokenizer: &Tokenizer, id: u32) -> Vec<u8> {
    let Some(piece) = tokenizer.id_to_token(id) else {
        return Vec::new();
    };
    // The vocabulary's own map: Tokenizer::get_added_tokens_decoder clones
    // it on every call.
    let added = tokenizer
        .get_added_vocabulary()
        .get_added_tokens_decoder()
        .contains_key(&id);
    if added {
        return piece.into_bytes();
    }
    let mut out = Vec::with_capacity(piece.len());
    for c in piece.chars() {
        match byte_of(c) {
            Some(b) => out.push(b),
            None => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::byte_of;

    #[test]
    fn the_table_covers_every_byte_once() {
        let mut seen = std::collections::HashSet::new();
        for c in (0u32..0x200).filter_map(char::from_u32) {
            if let Some(b) = byte_of(c) {
                assert!(seen.insert(b), "{c:?}");
            }
        }
        assert_eq!(seen.len(), 256);
        assert_eq!(byte_of('Ġ'), Some(b' '));
        assert_eq!(byte_of('Ċ'), Some(b'\n'));
        assert_eq!(byte_of('a'), Some(b'a'));
    }
}
