//! A model ready to generate: weights, the GGUF's own tokenizer, its chat
//! template and stop tokens, and the file's SHA-256 for provenance records.

use std::path::Path;

use crate::chat::{check_roles, ChatTemplate, InputError, Message, Piece};
use crate::gguf_tokenizer::{GgufTokenizer, Span};
use crate::model::{Model, Precision};
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
    /// Loads a GGUF model and its tokenizer at [`Precision::Q8_0`] (what
    /// serving and generation use). `name` is how APIs call it.
    pub fn load(path: &Path, name: &str) -> Result<Runtime, Error> {
        Runtime::load_with(path, name, Precision::Q8_0)
    }

    /// Like [`Runtime::load`] at the given precision
    /// ([`Precision::AsStored`] for audits: the file's own weights).
    pub fn load_with(path: &Path, name: &str, precision: Precision) -> Result<Runtime, Error> {
        let origin = path.display().to_string();
        let sha256 = crate::default_model::sha256_file(path)
            .map_err(|e| Error::Gguf(format!("{origin}: {e}")))?;
        let tokenizer = GgufTokenizer::from_file(path)?;
        let model = Model::load_with(path, precision)?;
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

    /// Replaces the model's chat template with `source` (ChatML when
    /// `None`), keeping its BOS and EOS text.
    pub fn set_chat_template(&mut self, source: Option<&str>) -> Result<(), Error> {
        let token_text = |id: Option<u32>| {
            id.and_then(|i| self.tokenizer.tokenizer.id_to_token(i))
                .unwrap_or_default()
        };
        self.template = ChatTemplate::new(
            source,
            &token_text(self.tokenizer.bos),
            &token_text(self.tokenizer.eos),
        )?;
        Ok(())
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

    /// Token ids of a raw prompt: plain text, so control-token text such as
    /// `<|im_start|>` is tokenized as the characters it is (whoever writes
    /// the prompt cannot forge turns or end the prompt); BOS is prepended
    /// when the model asks for it.
    pub fn encode_prompt(&self, text: &str) -> Result<Vec<u32>, Error> {
        let mut ids = Vec::new();
        if self.tokenizer.add_bos {
            ids.extend(self.tokenizer.bos);
        }
        ids.extend(self.tokenizer.encode_text(text)?);
        if ids.is_empty() {
            return Err(Error::Runtime("the prompt is empty".into()));
        }
        Ok(ids)
    }

    /// Token ids of a chat, rendered with the model's template. Roles must
    /// be among [`crate::chat::ROLES`]. Only the template's own text gives
    /// control tokens: message contents are plain text
    /// ([`ChatTemplate::render_split`]). When the template rewrites
    /// contents (so they cannot be told apart from its text), a content
    /// holding control-token text is refused instead
    /// ([`crate::chat::InputError::ControlToken`]).
    pub fn encode_chat(&self, messages: &[Message]) -> Result<Vec<u32>, Error> {
        check_roles(messages)?;
        let rendered = self.template.render_split(messages)?;
        let body = match &rendered.pieces {
            Some(pieces) => {
                let spans: Vec<Span> = pieces
                    .iter()
                    .map(|p| match p {
                        Piece::Template(t) => Span::Control(t),
                        Piece::Content(i) => Span::Plain(&messages[*i].content),
                    })
                    .collect();
                self.tokenizer.encode_spans(&spans)?
            }
            None => {
                for (index, m) in messages.iter().enumerate() {
                    if let Some((_, token, _)) = self.tokenizer.find_control(&m.content) {
                        return Err(InputError::ControlToken {
                            index,
                            token: token.to_string(),
                        }
                        .into());
                    }
                }
                self.tokenizer
                    .encode_spans(&[Span::Control(&rendered.text)])?
            }
        };
        let mut ids = Vec::with_capacity(body.len() + 1);
        // Templates usually write BOS themselves.
        if self.tokenizer.add_bos && body.first() != self.tokenizer.bos.as_ref() {
            ids.extend(self.tokenizer.bos);
        }
        ids.extend(body);
        if ids.is_empty() {
            return Err(Error::Runtime("the prompt is empty".into()));
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
