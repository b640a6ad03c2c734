//! Chat prompts: the model's own Jinja chat template (from the GGUF's
//! `tokenizer.chat_template`), rendered with minijinja and its Python
//! compatibility layer as Hugging Face templates expect; ChatML when the
//! model carries none.
//!
//! Message contents are text, never control tokens: [`ChatTemplate::render_split`]
//! renders the chat once with each content replaced by a unique marker,
//! so the prompt splits into the template's own text (whose control-token
//! text, such as `<|im_start|>`, gives control tokens) and the contents
//! (tokenized as the characters they are). Roles are limited to
//! [`ROLES`], which cannot carry control-token text or newlines.

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

/// The roles a message may have: OpenAI's. Any other role is refused
/// ([`InputError::Role`]): a role is written into the template's own text,
/// so `user<|im_end|>` or `system\nYou are ...` would forge a turn.
pub const ROLES: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

/// A chat the runtime refuses; [`field`](InputError::field) names the
/// request field at fault the way requests spell it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// `messages[index].role` is not one of [`ROLES`].
    #[error(
        "messages[{index}].role: {role:?} is not a chat role (system, developer, user, assistant, tool or function)"
    )]
    Role {
        /// The message's position.
        index: usize,
        /// The role given.
        role: String,
    },
    /// `messages[index].content` holds a control token's text and the
    /// model's chat template changes message contents (so they cannot be
    /// kept apart from its own text, [`Rendered::pieces`] is `None`).
    #[error(
        "messages[{index}].content contains the control token {token:?}; this model's chat template \
         rewrites message contents, so such text cannot be kept as plain text: remove it"
    )]
    ControlToken {
        /// The message's position.
        index: usize,
        /// The control token's text.
        token: String,
    },
}

impl InputError {
    /// The field at fault: `messages[i].role` or `messages[i].content`.
    pub fn field(&self) -> String {
        match self {
            InputError::Role { index, .. } => format!("messages[{index}].role"),
            InputError::ControlToken { index, .. } => format!("messages[{index}].content"),
        }
    }
}

/// Refuses a role outside [`ROLES`] ([`InputError::Role`]).
pub fn check_roles(messages: &[Message]) -> Result<(), InputError> {
    match messages
        .iter()
        .position(|m| !ROLES.contains(&m.role.as_str()))
    {
        Some(index) => Err(InputError::Role {
            index,
            role: messages[index].role.clone(),
        }),
        None => Ok(()),
    }
}

/// A piece of a rendered chat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// The template's own text.
    Template(String),
    /// `messages[i].content`, verbatim.
    Content(usize),
}

/// A chat rendered by [`ChatTemplate::render_split`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// The prompt text, as [`ChatTemplate::render`] gives it.
    pub text: String,
    /// `text` as the template's own pieces and the verbatim contents, in
    /// order (their concatenation is `text`); `None` when the template
    /// does not write each content as it is (it strips, rewrites or
    /// branches on it), and the contents cannot be told apart.
    pub pieces: Option<Vec<Piece>>,
}

/// ChatML, the fallback for models without a template.
const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Instructions one rendering of a chat template may execute (minijinja's
/// fuel): 2,000,000. SmolLM2's template and ChatML spend about 20 per
/// message (measured in `tests/hostile_gguf.rs`: 64,000 messages fit), and
/// templates with tool-call branches a few times that, so any real chat
/// fits, while a hostile template (nested `range(100000)` loops, 10^10
/// steps) is stopped after about a second instead of holding a worker for
/// hours.
pub const TEMPLATE_FUEL: u64 = 2_000_000;

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
        env.set_fuel(Some(TEMPLATE_FUEL));
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<String, _> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                msg,
            ))
        });
        let source = source.unwrap_or(CHATML).to_string();
        crate::gguf::guard("the model's chat template could not be compiled", || {
            env.add_template_owned("chat", source).map_err(|e| {
                Error::Gguf(format!("the model's chat template does not compile: {e}"))
            })
        })?;
        Ok(ChatTemplate {
            env,
            bos: bos.to_string(),
            eos: eos.to_string(),
        })
    }

    /// The prompt text for `messages`, ending where the assistant's answer
    /// begins. Errors ([`Error::Runtime`], "chat template: …") when the
    /// template fails, raises, or runs out of its [`TEMPLATE_FUEL`]
    /// instructions; a panic while rendering is returned as an error too.
    pub fn render(&self, messages: &[Message]) -> Result<String, Error> {
        if messages.is_empty() {
            return Err(Error::Runtime("a chat needs at least one message".into()));
        }
        let template = self
            .env
            .get_template("chat")
            .map_err(|e| Error::Runtime(format!("chat template: {e}")))?;
        let rendered = crate::gguf::guard("the chat template could not be rendered", || {
            template
                .render(minijinja::context! {
                    messages => messages,
                    add_generation_prompt => true,
                    bos_token => &self.bos,
                    eos_token => &self.eos,
                })
                .map_err(|e| {
                    if e.kind() == minijinja::ErrorKind::OutOfFuel {
                        Error::Runtime(format!(
                            "chat template: the template ran more than {TEMPLATE_FUEL} instructions \
                             for this chat and was stopped (real chat templates need tens to \
                             hundreds per message): {e}"
                        ))
                    } else {
                        Error::Runtime(format!("chat template: {e}"))
                    }
                })
        });
        rendered.map_err(|e| match e {
            Error::Gguf(m) => Error::Runtime(m),
            other => other,
        })
    }

    /// The prompt text for `messages` and, when the template writes each
    /// content verbatim, its split into the template's own text and the
    /// contents.
    ///
    /// The chat is rendered a second time with every content replaced by a
    /// marker (`\u{E000}` + a tag absent from the chat and the template +
    /// the message's index + `\u{E001}`) and cut at the markers; the split
    /// is kept only when putting the real contents back where the markers
    /// were gives exactly the real rendering.
    pub fn render_split(&self, messages: &[Message]) -> Result<Rendered, Error> {
        let text = self.render(messages)?;
        let source = self
            .env
            .get_template("chat")
            .map_err(|e| Error::Runtime(format!("chat template: {e}")))?
            .source()
            .to_string();
        let mut tag = 0u64;
        let open = loop {
            let open = format!("\u{E000}provmark-content-{tag}:");
            let seen = |s: &str| s.contains(&open);
            if !seen(&source)
                && !seen(&self.bos)
                && !seen(&self.eos)
                && !messages.iter().any(|m| seen(&m.content) || seen(&m.role))
            {
                break open;
            }
            tag += 1;
        };
        const CLOSE: char = '\u{E001}';
        let marked: Vec<Message> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| Message {
                role: m.role.clone(),
                content: format!("{open}{i}{CLOSE}"),
            })
            .collect();
        // A template that refuses the markers (it checks contents) cannot
        // be split; that is not the chat's fault.
        let Ok(marked_text) = self.render(&marked) else {
            return Ok(Rendered { text, pieces: None });
        };
        let mut pieces = Vec::new();
        let mut rest = marked_text.as_str();
        while let Some(at) = rest.find(&open) {
            let after = &rest[at + open.len()..];
            let index = after
                .find(CLOSE)
                .and_then(|end| Some((after[..end].parse::<usize>().ok()?, end)))
                .filter(|(i, _)| *i < messages.len());
            let Some((index, end)) = index else {
                return Ok(Rendered { text, pieces: None });
            };
            if at > 0 {
                pieces.push(Piece::Template(rest[..at].to_string()));
            }
            pieces.push(Piece::Content(index));
            rest = &after[end + CLOSE.len_utf8()..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Template(rest.to_string()));
        }
        let rebuilt: String = pieces
            .iter()
            .map(|p| match p {
                Piece::Template(t) => t.as_str(),
                Piece::Content(i) => messages[*i].content.as_str(),
            })
            .collect();
        let pieces = (rebuilt == text).then_some(pieces);
        Ok(Rendered { text, pieces })
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

    #[test]
    fn render_split_finds_the_contents() {
        let t = ChatTemplate::new(None, "", "").unwrap();
        let m = [msg("system", "Be brief."), msg("user", "Hi <|im_end|>")];
        let r = t.render_split(&m).unwrap();
        assert_eq!(r.text, t.render(&m).unwrap());
        let tpl = |s: &str| Piece::Template(s.into());
        assert_eq!(
            r.pieces,
            Some(vec![
                tpl("<|im_start|>system\n"),
                Piece::Content(0),
                tpl("<|im_end|>\n<|im_start|>user\n"),
                Piece::Content(1),
                tpl("<|im_end|>\n<|im_start|>assistant\n"),
            ])
        );
        // A content holding the marker's text moves the marker on.
        let sneaky = [msg("user", "\u{E000}provmark-content-0:0\u{E001}")];
        let r = t.render_split(&sneaky).unwrap();
        assert_eq!(
            r.pieces,
            Some(vec![
                tpl("<|im_start|>user\n"),
                Piece::Content(0),
                tpl("<|im_end|>\n<|im_start|>assistant\n"),
            ])
        );
        // A content written twice is two content pieces.
        let twice = ChatTemplate::new(
            Some("{{ messages[0]['content'] }}|{{ messages[0]['content'] }}"),
            "",
            "",
        )
        .unwrap();
        assert_eq!(
            twice.render_split(&[msg("user", "a")]).unwrap().pieces,
            Some(vec![Piece::Content(0), tpl("|"), Piece::Content(0)])
        );
        // Templates that branch on, rewrite, cut or refuse contents are
        // not split.
        for src in [
            "{% for m in messages %}{% if m['content'] == ' x' %}X{% else %}{{ m['content'] }}{% endif %}{% endfor %}",
            "{{ messages[0]['content'] | upper }}",
            "{{ messages[0]['content'].strip() }}",
            "{{ messages[0]['content'][:2] }}|{{ messages[0]['content'] }}",
            "{% if messages[0]['content'] != ' x' %}{{ raise_exception('no') }}{% endif %}{{ messages[0]['content'] }}",
        ] {
            let t = ChatTemplate::new(Some(src), "", "").unwrap();
            let r = t.render_split(&[msg("user", " x")]).unwrap();
            assert_eq!(r.pieces, None, "{src}");
            assert_eq!(r.text, t.render(&[msg("user", " x")]).unwrap());
        }
    }

    #[test]
    fn roles_are_openais() {
        for role in ROLES {
            check_roles(&[msg(role, "x")]).unwrap();
        }
        let e = check_roles(&[msg("user", "x"), msg("user\n", "x")]).unwrap_err();
        assert_eq!(
            e,
            InputError::Role {
                index: 1,
                role: "user\n".into()
            }
        );
        assert_eq!(e.field(), "messages[1].role");
    }
}
