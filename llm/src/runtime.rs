//! A model ready to generate: weights, the GGUF's own tokenizer, its chat
//! template and stop tokens, and the file's SHA-256 for provenance records.

use std::path::Path;

use crate::chat::{ChatTemplate, Message};
use crate::gguf_tokenizer::GgufTokenizer;
use crate::model::Model;
use crate::Error;

/// Tokens that end an answer when the vocabulary has them (ChatML, Llama 3,
/// Gemma), in addition to the model's EOS.
const STOP_TOKENS: &[&str] = &["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>"];

/// Everything needed to turn prompts into token ids and back.
pub struct Runtime {
    /// The weights.
    pub model: Model,
    /// The tokenizer.
    pub tokenizer: GgufTokenizer,
    template: ChatTemplate,
    stop: Vec<u32>,
    sha256: String,
    name: String,
}

impl Runtime {
    /// Loads a GGUF model and its tokenizer. `name` is how APIs call it.
    pub fn load(path: &Path, name: &str) -> Result<Runtime, Error> {
        let origin = path.display().to_string();
        let sha256 = crate::default_model::sha256_file(path)
            .map_err(|e| Error::Gguf(format!("{origin}: {e}")))?;
        let tokenizer = GgufTokenizer::from_file(path)?;
        let model = Model::load(path)?;
        let vocab = tokenizer.tokenizer.get_vocab_size(true);
        if vocab > model.config().vocab {
            return Err(Error::Gguf(format!(
                "{origin}: the tokenizer has {vocab} tokens but the model only {}",
                model.config().vocab
            )));
        }
        let token_text = |id: Option<u32>| {
            id.and_then(|i| tokenizer.tokenizer.id_to_token(i))
                .unwrap_or_default()
        };
        let template = ChatTemplate::new(
            tokenizer.chat_template.as_deref(),
            &token_text(tokenizer.bos),
            &token_text(tokenizer.eos),
        )
        .map_err(|e| Error::Gguf(format!("{origin}: {e}")))?;
        let mut stop: Vec<u32> = tokenizer.eos.into_iter().collect();
        for s in STOP_TOKENS {
            if let Some(id) = tokenizer.tokenizer.token_to_id(s) {
                if !stop.contains(&id) {
                    stop.push(id);
                }
            }
        }
        Ok(Runtime {
            model,
            tokenizer,
            template,
            stop,
            sha256,
            name: name.to_string(),
        })
    }

    /// The SHA-256 of the GGUF file, hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The model's name in APIs and records.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Token ids that end an answer.
    pub fn stop_tokens(&self) -> &[u32] {
        &self.stop
    }

    /// Token ids of a raw prompt (special-token text such as `<|im_start|>`
    /// is recognised; BOS is prepended when the model asks for it).
    pub fn encode_prompt(&self, text: &str) -> Result<Vec<u32>, Error> {
        let enc = self
            .tokenizer
            .tokenizer
            .encode_fast(text, false)
            .map_err(|e| Error::Runtime(format!("tokenizing the prompt: {e}")))?;
        let mut ids = Vec::with_capacity(enc.len() + 1);
        if self.tokenizer.add_bos {
            ids.extend(self.tokenizer.bos);
        }
        ids.extend_from_slice(enc.get_ids());
        if ids.is_empty() {
            return Err(Error::Runtime("the prompt is empty".into()));
        }
        Ok(ids)
    }

    /// Token ids of a chat, rendered with the model's template.
    pub fn encode_chat(&self, messages: &[Message]) -> Result<Vec<u32>, Error> {
        let text = self.template.render(messages)?;
        // Templates usually write BOS themselves.
        let ids = self.encode_prompt(&text)?;
        if self.tokenizer.add_bos && ids.len() > 1 && ids[0] == ids[1] {
            return Ok(ids[1..].to_vec());
        }
        Ok(ids)
    }

    /// Text of generated ids (special tokens dropped).
    pub fn decode(&self, ids: &[u32]) -> Result<String, Error> {
        self.tokenizer
            .tokenizer
            .decode(ids, true)
            .map_err(|e| Error::Runtime(format!("decoding tokens: {e}")))
    }
}
