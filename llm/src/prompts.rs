//! Prompt files (`provmark generate`, `provmark audit api`): JSON Lines, one
//! prompt per line, as `{"prompt": "..."}` or
//! `{"messages": [{"role": .., "content": ..}]}`, with an optional `id`
//! (string or number; default: the line number) unique within the file.
//! Blank lines are skipped; a UTF-8 byte order mark at the start of the
//! file is ignored. A line longer than [`MAX_PROMPT_LINE_BYTES`] or a NUL
//! byte (a binary file) is refused while reading, so memory stays bounded
//! by the line limit whatever the file holds.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use provmark_verify::input::{read_line_bounded, strip_bom, DEFAULT_MAX_RECORD_BYTES};
use serde_json::Value;

/// Longest prompt-file line read, in bytes: the record limit of every
/// other reader ([`DEFAULT_MAX_RECORD_BYTES`], 4 MiB), far above any
/// model's context.
pub const MAX_PROMPT_LINE_BYTES: usize = DEFAULT_MAX_RECORD_BYTES;

use crate::chat::Message;

/// One prompt.
#[derive(Clone, Debug, PartialEq)]
pub struct Prompt {
    /// Its id in the output (unique within the file): the `id` string, a
    /// number's JSON text, or the line number.
    pub id: String,
    /// The id as written in the input (string or number), echoed back.
    pub id_value: Value,
    /// What to ask.
    pub body: PromptBody,
}

/// What a prompt asks.
#[derive(Clone, Debug, PartialEq)]
pub enum PromptBody {
    /// Plain text: one user message, or raw text (no chat template).
    Text(String),
    /// A chat.
    Messages(Vec<Message>),
}

/// A prompt file that cannot be used; every variant names the file and,
/// past opening it, the line (1-based) and the field.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// The file cannot be opened.
    #[error("cannot open {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line cannot be read (I/O error or not UTF-8).
    #[error("{}:{line}: cannot read the line", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The line number.
        line: usize,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is longer than [`MAX_PROMPT_LINE_BYTES`].
    #[error("{}:{line}: line longer than the {limit} byte limit", path.display())]
    TooLong {
        /// The file.
        path: PathBuf,
        /// The line number.
        line: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The file holds a NUL byte: it is binary, not JSON Lines.
    #[error("{}:{line}: binary file: NUL byte at byte offset {offset}", path.display())]
    Binary {
        /// The file.
        path: PathBuf,
        /// The line number.
        line: usize,
        /// The NUL byte's offset in the file.
        offset: u64,
    },
    /// A line is not JSON.
    #[error("{}:{line}: not a JSON object", path.display())]
    NotJson {
        /// The file.
        path: PathBuf,
        /// The line number.
        line: usize,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// A line is JSON but not an object.
    #[error("{}:{line}: expected a JSON object", path.display())]
    NotObject {
        /// The file.
        path: PathBuf,
        /// The line number.
        line: usize,
    },
    /// A field has the wrong type (`expected` says which it must have).
    #[error("{}:{line}: field {field} must be {expected}", path.display())]
    Field {
        /// The file.
        path: PathBuf,
        /// The line number.
        line: usize,
        /// The field: `id`, `prompt`.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// `messages` is not a list of `{"role", "content"}` objects.
    #[error("{}:{line}: field messages must be a list of {{\"role\", \"content\"}} objects", path.display())]
    Messages {
        /// The file.
        path: PathBuf,
        /// The line number.
        line: usize,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// `messages` is an empty list.
    #[error("{}:{line}: field messages is empty", path.display())]
    EmptyMessages {
        /// The file.
        path: PathBuf,
        /// The line number.
        line: usize,
    },
    /// Both `prompt` and `messages` are given.
    #[error("{}:{line}: give prompt or messages, not both", path.display())]
    BothBodies {
        /// The file.
        path: PathBuf,
        /// The line number.
        line: usize,
    },
    /// Neither `prompt` nor `messages` is given.
    #[error("{}:{line}: field prompt (or messages) is missing", path.display())]
    NoBody {
        /// The file.
        path: PathBuf,
        /// The line number.
        line: usize,
    },
    /// Two prompts have the same id.
    #[error("{}:{line}: id {id} appears twice in the file", path.display())]
    DuplicateId {
        /// The file.
        path: PathBuf,
        /// The line number of the second one.
        line: usize,
        /// The id.
        id: String,
    },
}

/// Reads a whole prompt file.
pub fn read(path: &Path) -> Result<Vec<Prompt>, PromptError> {
    let file = std::fs::File::open(path).map_err(|source| PromptError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    parse(BufReader::new(file), path)
}

/// Parses prompt-file text from `reader`; `path` names it in errors. Lines
/// are read with [`read_line_bounded`] at [`MAX_PROMPT_LINE_BYTES`].
pub fn parse(reader: impl BufRead, path: &Path) -> Result<Vec<Prompt>, PromptError> {
    parse_bounded(reader, path, MAX_PROMPT_LINE_BYTES)
}

/// [`parse`] with another line limit, in bytes.
pub fn parse_bounded(
    mut reader: impl BufRead,
    path: &Path,
    limit: usize,
) -> Result<Vec<Prompt>, PromptError> {
    let mut prompts = Vec::new();
    let mut seen = HashSet::new();
    let mut buf = Vec::new();
    let mut offset = 0u64;
    let mut n = 0usize;
    loop {
        buf.clear();
        let path = || path.to_path_buf();
        let read =
            read_line_bounded(&mut reader, limit, &mut buf, &mut offset).map_err(|source| {
                PromptError::Read {
                    path: path(),
                    line: n + 1,
                    source,
                }
            })?;
        if read.consumed == 0 {
            break;
        }
        n += 1;
        if let Some(offset) = read.nul {
            return Err(PromptError::Binary {
                path: path(),
                line: n,
                offset,
            });
        }
        if read.too_long {
            return Err(PromptError::TooLong {
                path: path(),
                line: n,
                limit,
            });
        }
        let bytes = if n == 1 { strip_bom(&buf) } else { &buf[..] };
        let line = std::str::from_utf8(bytes).map_err(|e| PromptError::Read {
            path: path(),
            line: n,
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        let line = line
            .strip_suffix('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|source| PromptError::NotJson {
            path: path(),
            line: n,
            source,
        })?;
        let Value::Object(obj) = v else {
            return Err(PromptError::NotObject {
                path: path(),
                line: n,
            });
        };
        let id_value = match obj.get("id") {
            None => Value::from(n),
            Some(v @ (Value::String(_) | Value::Number(_))) => v.clone(),
            Some(_) => {
                return Err(PromptError::Field {
                    path: path(),
                    line: n,
                    field: "id",
                    expected: "a string or a number",
                })
            }
        };
        let id = match &id_value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if !seen.insert(id.clone()) {
            return Err(PromptError::DuplicateId {
                path: path(),
                line: n,
                id,
            });
        }
        let body = match (obj.get("prompt"), obj.get("messages")) {
            (Some(Value::String(p)), None) => PromptBody::Text(p.clone()),
            (Some(_), None) => {
                return Err(PromptError::Field {
                    path: path(),
                    line: n,
                    field: "prompt",
                    expected: "a string",
                })
            }
            (None, Some(m)) => {
                PromptBody::Messages(serde_json::from_value::<Vec<Message>>(m.clone()).map_err(
                    |source| PromptError::Messages {
                        path: path(),
                        line: n,
                        source,
                    },
                )?)
            }
            (Some(_), Some(_)) => {
                return Err(PromptError::BothBodies {
                    path: path(),
                    line: n,
                })
            }
            (None, None) => {
                return Err(PromptError::NoBody {
                    path: path(),
                    line: n,
                })
            }
        };
        if matches!(&body, PromptBody::Messages(m) if m.is_empty()) {
            return Err(PromptError::EmptyMessages {
                path: path(),
                line: n,
            });
        }
        prompts.push(Prompt { id, id_value, body });
    }
    Ok(prompts)
}
