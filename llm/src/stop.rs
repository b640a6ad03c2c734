//! Stop sequences on the answer's text: the text before the first
//! occurrence of any stop string is the answer; nothing at or after it is
//! ever emitted, and text that could still turn into a stop string is held
//! back until it cannot, so a streamed answer and a whole one are the same
//! characters.

/// The stop strings of one answer and the text held back for them.
#[derive(Clone, Debug, Default)]
pub struct StopText {
    stops: Vec<String>,
    held: String,
}

/// What [`StopText::push`] lets through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Released {
    /// Text safe to emit now.
    pub text: String,
    /// A stop string was found: the answer ends after `text`.
    pub stopped: bool,
}

impl StopText {
    /// A matcher for `stops` (empty strings are ignored).
    pub fn new(stops: &[String]) -> StopText {
        StopText {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
        }
    }

    /// Appends the answer's next `piece` of text and returns what may be
    /// emitted: everything before a stop string (then `stopped`), else
    /// everything but the longest end that begins some stop string.
    pub fn push(&mut self, piece: &str) -> Released {
        self.held.push_str(piece);
        let first = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min();
        if let Some(at) = first {
            let text = self.held[..at].to_string();
            self.held.clear();
            return Released {
                text,
                stopped: true,
            };
        }
        let keep = self
            .stops
            .iter()
            .map(|s| longest_prefix_at_end(&self.held, s))
            .max()
            .unwrap_or(0);
        let text = self.held[..self.held.len() - keep].to_string();
        self.held.drain(..self.held.len() - keep);
        Released {
            text,
            stopped: false,
        }
    }

    /// The answer ended without a stop string: the held-back text.
    pub fn flush(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

/// Length of the longest proper prefix of `stop` that `text` ends with.
fn longest_prefix_at_end(text: &str, stop: &str) -> usize {
    (1..stop.len())
        .rev()
        .find(|&n| stop.is_char_boundary(n) && text.ends_with(&stop[..n]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (Vec<String>, String, bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut m = StopText::new(&stops);
        let mut out = Vec::new();
        for p in pieces {
            let r = m.push(p);
            out.push(r.text);
            if r.stopped {
                return (out.clone(), out.concat(), true);
            }
        }
        out.push(m.flush());
        (out.clone(), out.concat(), false)
    }

    #[test]
    fn stops_at_the_first_occurrence_across_pieces() {
        let (pieces, text, stopped) = run(&["END"], &["The e", "nd. E", "N", "D!", " more"]);
        assert!(stopped);
        assert_eq!(text, "The end. ");
        // "E" and "EN" were held back, never emitted and then taken back.
        assert_eq!(pieces, vec!["The e", "nd. ", "", ""]);
        // Two stops: the earlier occurrence wins whatever the order.
        let (_, text, _) = run(&["world", "lo"], &["hello world"]);
        assert_eq!(text, "hel");
    }

    #[test]
    fn held_text_is_released_when_it_cannot_stop() {
        let (pieces, text, stopped) = run(&["\n\n"], &["a\n", "b", "\n"]);
        assert!(!stopped);
        assert_eq!(text, "a\nb\n");
        assert_eq!(pieces, vec!["a", "\nb", "", "\n"]);
        // No stops: everything at once.
        let (pieces, _, _) = run(&[], &["x", "y"]);
        assert_eq!(pieces, vec!["x", "y", ""]);
        // Multi-byte stop strings split on character boundaries only.
        let (_, text, stopped) = run(&["🌍!"], &["hi 🌍", "!"]);
        assert!(stopped);
        assert_eq!(text, "hi ");
    }
}
