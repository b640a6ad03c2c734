//! Chat prompts: the model's own Jinja chat template (from the GGUF's
//! `tokenizer.chat_template`), rendered with minijinja and its Python
//! compatibility layer as Hugging Face templates expect; ChatML when the
//! model carries none.

use serde::{Deserialize, Serialize};

use crate::Error;

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user`, `assistant` (or another role the template knows).
    pub role: String,
    /// The text.
    pub content: String,
}

/// ChatML, the fallback for models without a template.
const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// A compiled chat template.
pub struct ChatTemplate {
    env: minijinja::Environment<'static>,
    bos: String,
    eos: String,
}

impl ChatTemplate {
    /// Compiles `source` (or ChatML when `None`). `bos`/`eos` are the token
    /// strings templates may refer to as `bos_token`/`eos_token`.
    pub fn new(source: Option<&str>, bos: &str, eos: &str) -> Result<ChatTemplate, Error> {
        let mut env = minijinja::Environment::new();
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<String, _> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                msg,
            ))
        });
        env.add_template_owned("chat", source.unwrap_or(CHATML).to_string())
            .map_err(|e| Error::Gguf(format!("the model's chat template does not compile: {e}")))?;
        Ok(ChatTemplate {
            env,
            bos: bos.to_string(),
            eos: eos.to_string(),
        })
    }

    /// The prompt text for `messages`, ending where the assistant's answer
    /// begins.
    pub fn render(&self, messages: &[Message]) -> Result<String, Error> {
        if messages.is_empty() {
            return Err(Error::Runtime("a chat needs at least one message".into()));
        }
        let template = self.env.get_template("chat").expect("added in new");
        template
            .render(minijinja::context! {
                messages => messages,
                add_generation_prompt => true,
                bos_token => &self.bos,
                eos_token => &self.eos,
            })
            .map_err(|e| Error::Runtime(format!("chat template: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: &str) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }

    #[test]
    fn chatml_fallback() {
        let t = ChatTemplate::new(None, "", "").unwrap();
        let s = t
            .render(&[msg("system", "Be brief."), msg("user", "Hi")])
            .unwrap();
        assert_eq!(
            s,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn python_methods_and_exceptions_work() {
        let src = "{% if messages[0]['role'] == 'bad' %}{{ raise_exception('no bad roles') }}{% endif %}{{ bos_token }}{{ messages[0]['content'].strip() | upper }}";
        let t = ChatTemplate::new(Some(src), "<s>", "</s>").unwrap();
        assert_eq!(t.render(&[msg("user", "  hi  ")]).unwrap(), "<s>HI");
        let err = t.render(&[msg("bad", "x")]).unwrap_err().to_string();
        assert!(err.contains("no bad roles"), "{err}");
        assert!(t.render(&[]).is_err());
        assert!(ChatTemplate::new(Some("{% if %}"), "", "").is_err());
    }
}
