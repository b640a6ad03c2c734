//! Prompt files: the format lives in [`provmark_llm::prompts`].

use std::path::Path;

use anyhow::Result;
pub use provmark_llm::prompts::{Prompt, PromptBody};

/// Reads a whole prompt file; errors name the file, line and field.
pub fn read(path: &Path) -> Result<Vec<Prompt>> {
    Ok(provmark_llm::prompts::read(path)?)
}
