//! Real unwatermarked text and a tokenizer trained on it, for null tests.

use std::path::PathBuf;

use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

/// Path of the bundled human-written corpus (see `bench/data/README.md`;
/// the data stays beside the experiments that describe it).
pub fn docs_corpus_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bench/data/python-docs-topics.txt")
}

/// The bundled corpus text.
pub fn docs_corpus() -> String {
    std::fs::read_to_string(docs_corpus_path()).expect("bench/data corpus is present")
}

/// A byte-level BPE tokenizer (GPT-2 style) trained on `text` with
/// `vocab_size` tokens, serialised as a `tokenizer.json` string.
pub fn train_bpe_json(text: &str, vocab_size: usize) -> String {
    train_bpe(text, vocab_size, ByteLevel::default().into())
        .to_string(false)
        .expect("serialisable")
}

/// A byte-level BPE trained on `text` (paragraphs split at blank lines)
/// with `vocab_size` tokens, `<|endoftext|>` as special token, and
/// `pre_tokenizer` in front of it.
pub fn train_bpe(
    text: &str,
    vocab_size: usize,
    pre_tokenizer: tokenizers::pre_tokenizers::PreTokenizerWrapper,
) -> Tokenizer {
    let trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .special_tokens(vec![AddedToken::from("<|endoftext|>", true)])
        .build();
    let mut trainer = TrainerWrapper::BpeTrainer(trainer);
    let mut tokenizer = Tokenizer::new(BPE::default());
    tokenizer
        .with_pre_tokenizer(Some(pre_tokenizer))
        .with_decoder(Some(ByteLevel::default()));
    let docs: Vec<&str> = text.split("\n\n").collect();
    tokenizer
        .train(&mut trainer, docs.iter())
        .expect("training on in-memory text succeeds");
    tokenizer
}

/// Splits `ids` into consecutive chunks of `len` tokens (the last partial
/// chunk dropped).
pub fn chunks(ids: &[u32], len: usize) -> Vec<Vec<u32>> {
    ids.chunks_exact(len).map(|c| c.to_vec()).collect()
}
