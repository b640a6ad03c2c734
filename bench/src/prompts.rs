//! A varied, deterministic prompt set for real-model experiments: task
//! families × topics, so experiments can hold whole families out.

/// Task families: (name, template with `{}` for the topic).
pub const FAMILIES: &[(&str, &str)] = &[
    ("story", "Write a short story about {}."),
    ("explain", "Explain {} to a curious teenager."),
    ("howto", "Give step-by-step advice on {}."),
    ("opinion", "What are the pros and cons of {}? Discuss."),
    ("poem", "Write a poem about {}."),
    ("letter", "Write a letter to a friend about {}."),
    ("history", "Tell me about the history of {}."),
    ("describe", "Describe {} in vivid detail."),
];

/// Topics, varied on purpose.
pub const TOPICS: &[&str] = &[
    "the ocean at night",
    "learning to cook",
    "a city in the rain",
    "electric cars",
    "the first day at a new school",
    "volcanoes",
    "keeping bees",
    "the invention of the printing press",
    "a long train journey",
    "growing tomatoes",
    "friendship",
    "the moon landing",
    "a lost dog finding its way home",
    "recycling plastic",
    "chess",
    "winter in the mountains",
    "working from home",
    "the water cycle",
    "a market in the morning",
    "saving money",
    "dinosaurs",
    "a lighthouse keeper",
    "playing the violin",
    "the internet",
];

/// One prompt with its family, for hold-out splits.
#[derive(Clone, Debug)]
pub struct FamilyPrompt {
    /// Stable id: `family-topicindex`.
    pub id: String,
    /// Family name.
    pub family: &'static str,
    /// The prompt text.
    pub text: String,
}

/// The first `n` prompts, interleaving families so any prefix is varied.
pub fn prompt_set(n: usize) -> Vec<FamilyPrompt> {
    let mut out = Vec::new();
    'outer: for t in 0..TOPICS.len() {
        for (f, (family, template)) in FAMILIES.iter().enumerate() {
            if out.len() == n {
                break 'outer;
            }
            // Rotate topics across families so one topic is not asked
            // eight ways in a row.
            let topic = (t + f * 5) % TOPICS.len();
            out.push(FamilyPrompt {
                id: format!("{family}-{topic}"),
                family,
                text: template.replace("{}", TOPICS[topic]),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_are_unique_and_varied() {
        let all = prompt_set(FAMILIES.len() * TOPICS.len());
        assert_eq!(all.len(), 192);
        let mut texts: Vec<_> = all.iter().map(|p| &p.text).collect();
        texts.sort();
        texts.dedup();
        assert_eq!(texts.len(), 192);
        let first: Vec<_> = prompt_set(8).iter().map(|p| p.family).collect();
        assert_eq!(first.len(), 8);
        assert!(first.windows(2).all(|w| w[0] != w[1]));
    }
}
