//! A suspect's GGUF, whatever its bytes, never panics (or aborts) the
//! container reader, the model loader at either precision, the tokenizer or
//! its chat template. libfuzzer's panic hook aborts even on a panic that
//! the loaders' last-line guard (`provmark_llm::gguf::guard`) would turn
//! into an error, so those count as crashes here too.
//!
//! Seeds: the crafted regression files and the tiny real models, e.g.
//! `cargo +nightly fuzz run gguf_loader fuzz/corpus/gguf_loader
//! llm/tests/data/hostile llm/tests/data/tiny` (from the repository root).
//! Deterministic companion on stable: `llm/tests/hostile_gguf.rs`
//! (`seeded_mutations_never_panic`).
#![no_main]
use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use provmark_llm::chat::{ChatTemplate, Message};
use provmark_llm::gguf::read_content;
use provmark_llm::gguf_tokenizer::GgufTokenizer;
use provmark_llm::model::{Model, Precision, Step};

fuzz_target!(|data: &[u8]| {
    if read_content(&mut Cursor::new(data), "fuzz").is_err() {
        return;
    }
    for precision in [Precision::AsStored, Precision::Q8_0] {
        if let Ok(model) = Model::from_reader(Cursor::new(data), "fuzz", precision) {
            let mut cache = model.new_cache();
            let mut logits = Vec::new();
            let _ = model.forward(
                &mut [Step {
                    cache: &mut cache,
                    tokens: &[0],
                }],
                &mut logits,
            );
        }
    }
    if let Ok(tokenizer) = GgufTokenizer::from_reader(Cursor::new(data), "fuzz") {
        let _ = tokenizer.encode_text("Hello world <|im_end|>");
        if let Ok(template) = ChatTemplate::new(tokenizer.chat_template.as_deref(), "", "") {
            let _ = template.render_split(&[Message {
                role: "user".into(),
                content: "Hi".into(),
            }]);
        }
    }
});
