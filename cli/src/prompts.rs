//! Prompt files for `provmark generate`: JSON Lines, one prompt per line,
//! as `{"prompt": "..."}` or `{"messages": [{"role": .., "content": ..}]}`,
//! with an optional `id` (string or number; default: the line number).

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{bail, Context, Result};
use provmark_llm::chat::Message;
use serde_json::Value;

/// One prompt.
pub struct Prompt {
    /// Its id in the output (unique within the file).
    pub id: String,
    /// The id as written in the input (string or number), echoed back.
    pub id_value: Value,
    pub body: PromptBody,
}

pub enum PromptBody {
    /// Plain text: one user message, or raw text with `--raw`.
    Text(String),
    /// A chat.
    Messages(Vec<Message>),
}

/// Reads a whole prompt file; errors name the file, line and field.
pub fn read(path: &Path) -> Result<Vec<Prompt>> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {name}"))?;
    let mut prompts = Vec::new();
    let mut seen = HashSet::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let n = i + 1;
        let line = line.with_context(|| format!("{name}:{n}: cannot read the line"))?;
        if line.trim().is_empty() {
            continue;
        }
        let here = format!("{name}:{n}");
        let v: Value =
            serde_json::from_str(&line).with_context(|| format!("{here}: not a JSON object"))?;
        let Value::Object(obj) = v else {
            bail!("{here}: expected a JSON object");
        };
        let id_value = match obj.get("id") {
            None => Value::from(n),
            Some(v @ (Value::String(_) | Value::Number(_))) => v.clone(),
            Some(_) => bail!("{here}: field id must be a string or a number"),
        };
        let id = match &id_value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if !seen.insert(id.clone()) {
            bail!("{here}: id {id} appears twice in the file");
        }
        let body = match (obj.get("prompt"), obj.get("messages")) {
            (Some(Value::String(p)), None) => PromptBody::Text(p.clone()),
            (Some(_), None) => bail!("{here}: field prompt must be a string"),
            (None, Some(m)) => PromptBody::Messages(
                serde_json::from_value::<Vec<Message>>(m.clone()).with_context(|| {
                    format!("{here}: field messages must be a list of {{\"role\", \"content\"}} objects")
                })?,
            ),
            (Some(_), Some(_)) => bail!("{here}: give prompt or messages, not both"),
            (None, None) => bail!("{here}: field prompt (or messages) is missing"),
        };
        if matches!(&body, PromptBody::Messages(m) if m.is_empty()) {
            bail!("{here}: field messages is empty");
        }
        prompts.push(Prompt { id, id_value, body });
    }
    Ok(prompts)
}
