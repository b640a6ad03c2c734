//! From distinct tuples to an attribution verdict (spec §8.1): the exact
//! test and the key-swap null of one corpus ([`Totals`], also the sharded
//! audits' partial format `provmark-audit-partial/1`), the decision beside
//! an optional clean reference ([`decide`]), the merge of shard partials
//! ([`merge`]) and the JSON form of the verdict object ([`verdict_json`]),
//! as `provmark audit … --json` prints it and evidence reports record it.

use provmark_watermark::{Profile, Scheme};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::corpus::{key_swap_null, score_tuples, DistinctTuples, Shard};
use crate::detect::{null_test, Detector, TestResult};

/// The `format` member of a partial (per-shard) audit result.
pub const PARTIAL_FORMAT: &str = "provmark-audit-partial/2";

/// Errors of the attribution step. Messages name the parameter or the
/// partial file; they never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// alpha outside (0, 1).
    #[error("--alpha must lie strictly between 0 and 1, got {alpha}")]
    AlphaRange {
        /// The level given.
        alpha: f64,
    },
    /// The key-swap p-value can never reach alpha with this many null keys.
    #[error(
        "with {null_keys} null keys the key-swap p-value is at least {floor:.3e} > --alpha {alpha}: \
         use at least {needed} null keys"
    )]
    TooFewNullKeys {
        /// Null keys given (M).
        null_keys: usize,
        /// 1/(M + 1), the smallest key-swap p-value.
        floor: f64,
        /// The level given.
        alpha: f64,
        /// ⌈1/alpha⌉ − 1, the fewest null keys that can reach alpha.
        needed: u64,
    },
    /// More null keys than [`MAX_NULL_KEYS`] (each costs one scoring pass
    /// over the distinct tuples and 8 bytes of results).
    #[error("--null-keys {null_keys} is more than {MAX_NULL_KEYS} (a key-swap p-value of 1e-6 needs 999,999)")]
    TooManyNullKeys {
        /// Null keys given.
        null_keys: usize,
    },
    /// Scoring the tuples (under the key or a null key) failed.
    #[error(transparent)]
    Scoring(#[from] crate::Error),
    /// A partial result file is not valid JSON of the partial format.
    #[error("{name}: not a partial audit result")]
    Parse {
        /// The partial's name (its path as given).
        name: String,
        /// What the JSON parser said.
        #[source]
        source: serde_json::Error,
    },
    /// A partial result of another format version (version 1 partials bind
    /// neither their files nor their key: made again with this version).
    #[error("{name}: format {found:?}, expected {PARTIAL_FORMAT:?} (run the shard again with this version)")]
    Format {
        /// The partial's name.
        name: String,
        /// Its `format` member.
        found: String,
    },
    /// A partial made with another profile.
    #[error("{name}: made with profile {found}, not {profile}")]
    ProfileMismatch {
        /// The partial's name.
        name: String,
        /// Its profile digest.
        found: String,
        /// The profile merged with (as the caller names it, e.g. its path).
        profile: String,
    },
    /// Two partials that cannot belong to one sharded audit.
    #[error(
        "{name} and {first} come from different audits \
         (their key, files, settings, shard count or counts differ)"
    )]
    DifferentAudits {
        /// The partial that differs.
        name: String,
        /// The first partial, which it was compared with.
        first: String,
    },
    /// A shard index not below the shard count.
    #[error("{name}: bad shard index")]
    BadShardIndex {
        /// The partial's name.
        name: String,
    },
    /// The same shard twice.
    #[error("{name}: shard {index}/{count} given twice")]
    ShardTwice {
        /// The second partial of that shard.
        name: String,
        /// Shard index.
        index: u32,
        /// Shard count.
        count: u32,
    },
    /// The merged statistic reached 2^37, beyond exact binary64 sums
    /// (spec §8).
    #[error("the merged statistic reached 2^37, beyond what this version sums exactly (spec §8)")]
    StatisticTooLarge,
    /// A shard without its partial.
    #[error("shard {index}/{count} is missing: every shard is needed for an exact result")]
    ShardMissing {
        /// The first missing shard index.
        index: u32,
        /// Shard count.
        count: u32,
    },
    /// Nothing to merge.
    #[error("no partial results to merge")]
    NoPartials,
    /// A partial without its binding (key commitment, settings, files).
    #[error("{name}: the partial does not say which key, settings and files it was made from")]
    Unbound {
        /// The partial's name.
        name: String,
    },
}

/// The most null keys an audit takes (p floor 1e-7): bounds the work and
/// memory a flag or a hostile report can ask for.
pub const MAX_NULL_KEYS: usize = 10_000_000;

/// Checks the decision level and the key-swap null's size: alpha in (0, 1),
/// M ≤ [`MAX_NULL_KEYS`] and 1/(M + 1) ≤ alpha (else the key-swap p-value
/// could never reach it).
pub fn check_levels(alpha: f64, null_keys: usize) -> Result<(), Error> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(Error::AlphaRange { alpha });
    }
    if null_keys > MAX_NULL_KEYS {
        return Err(Error::TooManyNullKeys { null_keys });
    }
    let floor = 1.0 / (null_keys as f64 + 1.0);
    if floor > alpha {
        return Err(Error::TooFewNullKeys {
            null_keys,
            floor,
            alpha,
            needed: (1.0 / alpha).ceil() as u64 - 1,
        });
    }
    Ok(())
}

/// The key-swap null's settings: M random keys derived from a public seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NullKeys {
    /// M, the number of random keys.
    pub keys: usize,
    /// The public seed they are derived from (see [`crate::corpus::null_key`]).
    pub seed: u64,
}

/// The key-swap p-value of an observed statistic among the statistics of
/// M random keys: `at_least` = #{S_i ≥ S} and p = (1 + at_least)/(M + 1)
/// (never below 1/(M + 1)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KeySwapP {
    /// M.
    pub keys: usize,
    /// Random keys whose statistic reached the observed one.
    pub at_least: usize,
    /// (1 + at_least)/(M + 1).
    pub p_value: f64,
}

/// The key-swap p-value of `observed` among `null_statistics`.
pub fn key_swap_p(null_statistics: &[f64], observed: f64) -> KeySwapP {
    let keys = null_statistics.len();
    let at_least = null_statistics.iter().filter(|&&s| s >= observed).count();
    KeySwapP {
        keys,
        at_least,
        p_value: (1 + at_least) as f64 / (keys + 1) as f64,
    }
}

/// How one corpus was read, before scoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Texts read and tokenized.
    pub texts: usize,
    /// Records that could not be read or tokenized.
    pub errors: usize,
    /// Distinct tuples before the filter Φ.
    pub distinct: usize,
    /// Distinct windows of the filter Φ, when one was applied.
    pub filter_windows: Option<usize>,
    /// Tuples the filter dropped.
    pub dropped: usize,
}

/// An audit's sufficient statistics: what a shard writes (the partial
/// format [`PARTIAL_FORMAT`], as JSON) and what merging adds up (shards are
/// disjoint sets of distinct tuples).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Totals {
    /// [`PARTIAL_FORMAT`].
    pub format: String,
    /// The profile's digest.
    pub profile_digest: String,
    /// The key's public id.
    pub key_id: String,
    /// This shard's index.
    pub shard_index: u32,
    /// Shards in the audit.
    pub shard_count: u32,
    /// Texts read (all shards).
    pub texts: usize,
    /// Records that could not be read.
    pub unreadable: usize,
    /// Scorable positions (all shards).
    pub positions: u64,
    /// Distinct tuples in this shard, before the filter.
    pub distinct_tuples: u64,
    /// Distinct windows of the filter Φ, when one was applied.
    pub filter_windows: Option<usize>,
    /// Tuples the filter dropped.
    pub filtered_out: u64,
    /// Distinct tuples scored.
    pub scored: u64,
    /// Their summed score under the key.
    pub statistic: f64,
    /// The key-swap null's seed.
    pub null_seed: u64,
    /// The statistic under each null key, in key order.
    pub null_statistics: Vec<f64>,
    /// What the shard's audit read and how (spec/report.md §6): set in a
    /// partial file, `None` in an unsharded run's totals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<Binding>,
}

/// What binds a partial result to its audit: the key (by commitment), the
/// settings that change a result, and every file read, by SHA-256. Shards
/// of one audit have equal bindings, and a merged report records the files
/// so that it can be recomputed from them (spec/report.md §6).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// The key's commitment (SPEC §2).
    pub key_commitment: String,
    /// The corpus audit's recorded parameters other than `alpha`
    /// (`null_keys`, `null_seed`, `field`), as in its report.
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// The files the audit read, in its order, as a report's `inputs`.
    pub inputs: Vec<BoundInput>,
}

/// One file a sharded audit read.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BoundInput {
    /// Its role (`tokenizer`, `model`, `filter`, `input`).
    pub role: String,
    /// Its name as given.
    pub name: String,
    /// Hex SHA-256 of its bytes.
    pub sha256: String,
    /// Its length.
    pub bytes: u64,
}

impl Totals {
    /// Scores `tuples` under `detector`'s key and under the key-swap null;
    /// `progress` is called with the number of null keys done after each.
    pub fn score(
        profile: &Profile,
        detector: &Detector,
        null: NullKeys,
        counts: &Counts,
        tuples: &DistinctTuples,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Totals, Error> {
        let observed = score_tuples(detector, tuples)?;
        let swap = key_swap_null(profile, tuples, &observed, null.keys, null.seed, progress)?;
        let shard: Shard = tuples.shard();
        Ok(Totals {
            format: PARTIAL_FORMAT.into(),
            profile_digest: profile.digest(),
            key_id: profile.key_id().to_string(),
            shard_index: shard.index(),
            shard_count: shard.count(),
            texts: counts.texts,
            unreadable: counts.errors,
            positions: tuples.positions,
            distinct_tuples: counts.distinct as u64,
            filter_windows: counts.filter_windows,
            filtered_out: counts.dropped as u64,
            scored: observed.scored,
            statistic: observed.statistic,
            null_seed: null.seed,
            null_statistics: swap.statistics,
            binding: None,
        })
    }

    /// Reads a partial result (one JSON object) named `name` in errors.
    pub fn parse_partial(name: &str, text: &str) -> Result<Totals, Error> {
        let t: Totals = serde_json::from_str(text).map_err(|source| Error::Parse {
            name: name.to_string(),
            source,
        })?;
        if t.format != PARTIAL_FORMAT {
            return Err(Error::Format {
                name: name.to_string(),
                found: t.format,
            });
        }
        Ok(t)
    }

    /// Fails unless this partial was made with the profile of digest
    /// `digest` (called `profile` in the error).
    pub fn check_profile(&self, name: &str, digest: &str, profile: &str) -> Result<(), Error> {
        if self.profile_digest != digest {
            return Err(Error::ProfileMismatch {
                name: name.to_string(),
                found: self.profile_digest.clone(),
                profile: profile.to_string(),
            });
        }
        Ok(())
    }
}

/// Combines the partials of one sharded audit (`(name, totals)` pairs, the
/// names used in errors) into the whole audit's totals (shard 0/1). Every
/// partial must come from `digest`'s profile (called `profile` in errors)
/// and the same audit (shard count, null keys, texts, positions, filter),
/// and every shard must be given exactly once.
pub fn merge(parts: &[(String, Totals)], digest: &str, profile: &str) -> Result<Totals, Error> {
    let Some((first_name, first)) = parts.first() else {
        return Err(Error::NoPartials);
    };
    for (name, t) in parts {
        t.check_profile(name, digest, profile)?;
    }
    let count = first.shard_count;
    let mut seen = vec![false; count as usize];
    let Some(binding) = &first.binding else {
        return Err(Error::Unbound {
            name: first_name.clone(),
        });
    };
    for (name, t) in parts {
        if t.binding.is_none() {
            return Err(Error::Unbound { name: name.clone() });
        }
        let same = t.shard_count == count
            && t.binding.as_ref() == Some(binding)
            && t.key_id == first.key_id
            && t.null_seed == first.null_seed
            && t.null_statistics.len() == first.null_statistics.len()
            && t.texts == first.texts
            && t.unreadable == first.unreadable
            && t.positions == first.positions
            && t.filter_windows == first.filter_windows;
        if !same {
            return Err(Error::DifferentAudits {
                name: name.clone(),
                first: first_name.clone(),
            });
        }
        let slot = seen
            .get_mut(t.shard_index as usize)
            .ok_or_else(|| Error::BadShardIndex { name: name.clone() })?;
        if *slot {
            return Err(Error::ShardTwice {
                name: name.clone(),
                index: t.shard_index,
                count,
            });
        }
        *slot = true;
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        return Err(Error::ShardMissing {
            index: missing as u32,
            count,
        });
    }
    // Summed in shard order (the sums are exact, spec §7, so the order only
    // matters for partials not made by a conforming implementation).
    let mut ordered: Vec<&Totals> = parts.iter().map(|(_, t)| t).collect();
    ordered.sort_by_key(|t| t.shard_index);
    let mut total = ordered[0].clone();
    total.shard_index = 0;
    total.shard_count = 1;
    for t in &ordered[1..] {
        total.distinct_tuples += t.distinct_tuples;
        total.filtered_out += t.filtered_out;
        total.scored += t.scored;
        total.statistic += t.statistic;
        for (a, b) in total.null_statistics.iter_mut().zip(&t.null_statistics) {
            *a += b;
        }
    }
    let sums = std::iter::once(&total.statistic).chain(&total.null_statistics);
    if !sums
        .into_iter()
        .all(|s| crate::corpus::is_exact_statistic(*s))
    {
        return Err(Error::StatisticTooLarge);
    }
    Ok(total)
}

/// Both tests of one corpus at level alpha.
#[derive(Clone, Copy, Debug)]
pub struct Judgement {
    /// The exact test (spec §8); `None` when nothing was scored.
    pub test: Option<TestResult>,
    /// The key-swap null's p-value.
    pub swap: KeySwapP,
    /// Both p-values ≤ alpha.
    pub attributed: bool,
}

/// Judges one corpus's totals under `scheme`'s null at level `alpha`.
pub fn judge(scheme: &Scheme, t: &Totals, alpha: f64) -> Judgement {
    let test = null_test(scheme, t.scored, t.statistic);
    let swap = key_swap_p(&t.null_statistics, t.statistic);
    Judgement {
        attributed: test.is_some_and(|x| x.p.le(alpha)) && swap.p_value <= alpha,
        test,
        swap,
    }
}

/// An audit's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributionVerdict {
    /// Both of the suspect's p-values ≤ alpha, and the clean reference (if
    /// any) not flagged.
    Attributed,
    /// The suspect is not flagged.
    NotAttributed,
    /// The suspect and the clean reference are both flagged: the pipeline
    /// finds the watermark where it cannot be, so nothing can be concluded.
    Inconclusive,
    /// Nothing of the suspect could be scored.
    TooShort,
}

impl AttributionVerdict {
    /// The verdict as written in outputs and reports: `attributed`,
    /// `not_attributed`, `inconclusive`, `too_short`.
    pub fn as_str(self) -> &'static str {
        match self {
            AttributionVerdict::Attributed => "attributed",
            AttributionVerdict::NotAttributed => "not_attributed",
            AttributionVerdict::Inconclusive => "inconclusive",
            AttributionVerdict::TooShort => "too_short",
        }
    }
}

impl std::fmt::Display for AttributionVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The decision of an audit: the suspect's judgement, the clean
/// reference's (when one was run through the same pipeline) and the verdict.
#[derive(Clone, Copy, Debug)]
pub struct Attribution {
    /// The level.
    pub alpha: f64,
    /// The suspect's tests.
    pub suspect: Judgement,
    /// The clean reference's tests, when given.
    pub reference: Option<Judgement>,
    /// The verdict.
    pub verdict: AttributionVerdict,
}

/// The verdict: `attributed` needs both of the suspect's p-values ≤ alpha
/// and, when a clean reference is given, the reference not flagged (a
/// flagged reference means the pipeline itself finds the watermark where it
/// cannot be: `inconclusive`); `too_short` when nothing was scored.
pub fn decide(
    scheme: &Scheme,
    suspect: &Totals,
    reference: Option<&Totals>,
    alpha: f64,
) -> Attribution {
    let s = judge(scheme, suspect, alpha);
    let r = reference.map(|t| judge(scheme, t, alpha));
    let verdict = match (&s.test, s.attributed, &r) {
        (None, _, _) => AttributionVerdict::TooShort,
        (_, true, Some(rj)) if rj.attributed => AttributionVerdict::Inconclusive,
        (_, true, _) => AttributionVerdict::Attributed,
        _ => AttributionVerdict::NotAttributed,
    };
    Attribution {
        alpha,
        suspect: s,
        reference: r,
        verdict,
    }
}

/// One corpus's members of the verdict object.
fn corpus_json(t: &Totals, j: &Judgement) -> Map<String, Value> {
    let v = json!({
        "texts": t.texts,
        "unreadable": t.unreadable,
        "positions": t.positions,
        "distinct_tuples": t.distinct_tuples,
        "filter_windows": t.filter_windows,
        "filtered_out": t.filtered_out,
        "scored": t.scored,
        "statistic": t.statistic,
        "log10_p": j.test.map(|x| x.p.log10()),
        "p_value": j.test.map(|x| x.p.value()),
        "z": j.test.map(|x| x.z),
        "key_swap": {
            "keys": j.swap.keys, "seed": t.null_seed,
            "at_least": j.swap.at_least, "p_value": j.swap.p_value,
        },
        "attributed": j.attributed,
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("a JSON object"),
    }
}

/// The verdict object of `provmark audit … --json`: the suspect's numbers,
/// `reference` (the clean reference's, with its own `attributed`), `alpha`,
/// `verdict`, `profile_digest`, `key_id`, then the mode's `extra` members.
pub fn verdict_json(
    suspect: &Totals,
    reference: Option<&Totals>,
    decision: &Attribution,
    extra: &Map<String, Value>,
) -> Value {
    let mut m = corpus_json(suspect, &decision.suspect);
    m.remove("attributed");
    if let (Some(t), Some(j)) = (reference, &decision.reference) {
        m.insert("reference".into(), Value::Object(corpus_json(t, j)));
    }
    m.insert("alpha".into(), json!(decision.alpha));
    m.insert("verdict".into(), json!(decision.verdict.as_str()));
    m.insert("profile_digest".into(), json!(suspect.profile_digest));
    m.insert("key_id".into(), json!(suspect.key_id));
    m.extend(extra.clone());
    Value::Object(m)
}

/// An evidence report's `results` for an audit: the verdict object (without
/// extra members) plus every key-swap statistic (`key_swap.statistics`, and
/// the reference's). The verdict object's numbers are those of its printed
/// text (parsed back), exactly what `--json` shows.
pub fn report_results(
    suspect: &Totals,
    reference: Option<&Totals>,
    decision: &Attribution,
) -> Value {
    let printed = verdict_json(suspect, reference, decision, &Map::new()).to_string();
    let mut results: Value = serde_json::from_str(&printed).expect("a JSON object just printed");
    results["key_swap"]["statistics"] = json!(suspect.null_statistics);
    if let Some(r) = reference {
        results["reference"]["key_swap"]["statistics"] = json!(r.null_statistics);
    }
    results
}

/// An evidence report's `decision` for an audit (one test per audit: no
/// multiple-testing correction).
pub fn report_decision(decision: &Attribution) -> Value {
    json!({"verdict": decision.verdict.as_str(), "alpha": decision.alpha, "correction": "none"})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(scored: u64, statistic: f64, nulls: Vec<f64>) -> Totals {
        Totals {
            format: PARTIAL_FORMAT.into(),
            profile_digest: "sha256:p".into(),
            key_id: "k".into(),
            shard_index: 0,
            shard_count: 1,
            texts: 10,
            unreadable: 0,
            positions: scored,
            distinct_tuples: scored,
            filter_windows: None,
            filtered_out: 0,
            scored,
            statistic,
            null_seed: 0,
            null_statistics: nulls,
            binding: Some(Binding {
                key_commitment: "c".into(),
                parameters: Map::new(),
                inputs: vec![BoundInput {
                    role: "input".into(),
                    name: "answers.jsonl".into(),
                    sha256: "00".repeat(32),
                    bytes: 10,
                }],
            }),
        }
    }

    fn scheme() -> Scheme {
        Scheme::Gumbel
    }

    /// A Gumbel statistic far above its mean n (each score is Exp(1) under
    /// the null): attributed when the null keys stay below it.
    fn marked() -> Totals {
        totals(1000, 1500.0, vec![1000.0; 999])
    }

    fn clean() -> Totals {
        totals(
            1000,
            1000.0,
            (0..999).map(|i| 950.0 + i as f64 * 0.1).collect(),
        )
    }

    #[test]
    fn key_swap_p_counts_ties_and_has_a_floor() {
        let p = key_swap_p(&[1.0, 2.0, 3.0], 2.0);
        assert_eq!((p.keys, p.at_least), (3, 2));
        assert_eq!(p.p_value, 3.0 / 4.0);
        // An all-green corpus beats every random key: exactly 1/(M + 1).
        let m = 999;
        let p = key_swap_p(&vec![10.0; m], 1e9);
        assert_eq!(p.at_least, 0);
        assert_eq!(p.p_value, 1.0 / (m as f64 + 1.0));
    }

    /// A corpus whose every tuple is green under the key (KGW, h = 1):
    /// no random key reaches its statistic, so the key-swap p-value is
    /// exactly 1/(M + 1), and the audit attributes it.
    #[test]
    fn an_all_green_corpus_has_the_smallest_key_swap_p() {
        use crate::corpus::TupleSet;
        use provmark_watermark::{Key, KgwParams, TokenizerDigest};
        let key = Key::from_bytes([1; 32]);
        let scheme = Scheme::Kgw(KgwParams::new(0.25, 2.0).unwrap());
        let profile = Profile::new(scheme, 1, TokenizerDigest::of_bytes(b"t"), &key).unwrap();
        let detector = Detector::new(&profile, &key).unwrap();
        // Increasing green tokens: every (window, token) tuple is distinct.
        let mut ids = vec![0u32];
        while ids.len() < 300 {
            let prev = *ids.last().unwrap();
            let green = (prev + 1..)
                .find(|&t| detector.score(&[], &[prev, t]).scores[0] > 0.5)
                .unwrap();
            ids.push(green);
        }
        let mut set = TupleSet::new(1, Shard::ALL).unwrap();
        set.add_text(&ids);
        let tuples = set.finish();
        let counts = Counts {
            texts: 1,
            distinct: tuples.len(),
            ..Counts::default()
        };
        let null = NullKeys { keys: 99, seed: 3 };
        let done = std::sync::atomic::AtomicUsize::new(0);
        let t = Totals::score(&profile, &detector, null, &counts, &tuples, &|n| {
            done.store(n, std::sync::atomic::Ordering::Relaxed)
        })
        .unwrap();
        assert_eq!(done.into_inner(), 99);
        assert_eq!((t.scored, t.statistic), (299, 299.0));
        let d = decide(profile.scheme(), &t, None, 0.05);
        assert_eq!(d.suspect.swap.at_least, 0);
        assert_eq!(d.suspect.swap.p_value, 1.0 / 100.0);
        assert_eq!(d.verdict, AttributionVerdict::Attributed);
    }

    #[test]
    fn the_four_verdicts() {
        let a = 1e-3;
        let d = decide(&scheme(), &marked(), None, a);
        assert_eq!(d.verdict, AttributionVerdict::Attributed);
        let d = decide(&scheme(), &clean(), None, a);
        assert_eq!(d.verdict, AttributionVerdict::NotAttributed);
        let d = decide(&scheme(), &marked(), Some(&clean()), a);
        assert_eq!(d.verdict, AttributionVerdict::Attributed);
        let d = decide(&scheme(), &marked(), Some(&marked()), a);
        assert_eq!(d.verdict, AttributionVerdict::Inconclusive);
        let d = decide(&scheme(), &totals(0, 0.0, vec![0.0; 999]), None, a);
        assert_eq!(d.verdict, AttributionVerdict::TooShort);
        // A strong exact test alone is not enough: the key-swap null must agree.
        let d = decide(&scheme(), &totals(1000, 1500.0, vec![2000.0; 999]), None, a);
        assert_eq!(d.verdict, AttributionVerdict::NotAttributed);
        for v in [
            AttributionVerdict::Attributed,
            AttributionVerdict::NotAttributed,
            AttributionVerdict::Inconclusive,
            AttributionVerdict::TooShort,
        ] {
            assert_eq!(serde_json::to_value(v).unwrap(), json!(v.as_str()));
        }
    }

    #[test]
    fn verdict_json_has_todays_members() {
        let s = marked();
        let r = clean();
        let d = decide(&scheme(), &s, Some(&r), 1e-3);
        let mut extra = Map::new();
        extra.insert("model".into(), json!("m"));
        let v = verdict_json(&s, Some(&r), &d, &extra);
        assert_eq!(v["verdict"], "attributed");
        assert_eq!(v["model"], "m");
        assert!(v.get("attributed").is_none());
        assert_eq!(v["reference"]["attributed"], false);
        assert_eq!(v["key_swap"]["keys"], 999);
        assert_eq!(v["key_swap"]["at_least"], 0);
        let results = report_results(&s, Some(&r), &d);
        assert_eq!(
            results["key_swap"]["statistics"].as_array().unwrap().len(),
            999
        );
        assert!(results.get("model").is_none());
        assert_eq!(report_decision(&d)["correction"], "none");
    }

    #[test]
    fn levels() {
        assert!(matches!(
            check_levels(0.0, 999),
            Err(Error::AlphaRange { .. })
        ));
        assert!(matches!(
            check_levels(1.0, 999),
            Err(Error::AlphaRange { .. })
        ));
        assert!(check_levels(1e-3, 999).is_ok());
        let e = check_levels(1e-3, 99).unwrap_err();
        assert!(
            matches!(e, Error::TooFewNullKeys { needed: 999, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("use at least 999 null keys"));
    }

    fn shards(n: u32) -> Vec<(String, Totals)> {
        (0..n)
            .map(|i| {
                let mut t = totals(100 + i as u64, 10.0 * i as f64, vec![i as f64; 9]);
                t.shard_index = i;
                t.shard_count = n;
                t.positions = 1000;
                (format!("part{i}"), t)
            })
            .collect()
    }

    #[test]
    fn merge_adds_up_the_shards_in_any_order() {
        for n in 1..=4u32 {
            let mut parts = shards(n);
            parts.reverse();
            let m = merge(&parts, "sha256:p", "lab.profile.json").unwrap();
            assert_eq!((m.shard_index, m.shard_count), (0, 1));
            let scored: u64 = (0..n as u64).map(|i| 100 + i).sum();
            assert_eq!(m.scored, scored);
            assert_eq!(m.distinct_tuples, scored);
            let stat: f64 = (0..n).map(|i| 10.0 * i as f64).sum();
            assert_eq!(m.statistic, stat);
            let null: f64 = (0..n).map(|i| i as f64).sum();
            assert_eq!(m.null_statistics, vec![null; 9]);
            assert_eq!(m.positions, 1000);
        }
    }

    #[test]
    fn merge_refusals() {
        let digest = "sha256:p";
        let run = |parts: &[(String, Totals)]| merge(parts, digest, "lab.profile.json");
        assert!(matches!(run(&[]), Err(Error::NoPartials)));
        let mut p = shards(3);
        p.remove(1);
        let e = run(&p).unwrap_err();
        assert!(matches!(e, Error::ShardMissing { index: 1, count: 3 }));
        assert!(e.to_string().contains("shard 1/3 is missing"));
        let mut p = shards(2);
        p.push(p[1].clone());
        assert!(matches!(run(&p), Err(Error::ShardTwice { index: 1, .. })));
        let mut p = shards(2);
        p[1].1.shard_index = 5;
        assert!(matches!(run(&p), Err(Error::BadShardIndex { .. })));
        let mut p = shards(2);
        p[1].1.null_seed = 7;
        assert!(matches!(run(&p), Err(Error::DifferentAudits { .. })));
        let mut p = shards(2);
        p[1].1.texts += 1;
        assert!(matches!(run(&p), Err(Error::DifferentAudits { .. })));
        // Every shard reads the whole corpus (spec §8.1), so its
        // unreadable records are the corpus's too.
        let mut p = shards(2);
        p[1].1.unreadable += 1;
        assert!(matches!(run(&p), Err(Error::DifferentAudits { .. })));
        // A shard of another corpus with matching counts, or made under
        // another key, is not a shard of this audit.
        let mut p = shards(2);
        p[1].1.binding.as_mut().unwrap().inputs[0].sha256 = "11".repeat(32);
        assert!(matches!(run(&p), Err(Error::DifferentAudits { .. })));
        let mut p = shards(2);
        p[0].1.binding.as_mut().unwrap().key_commitment = "d".into();
        assert!(matches!(run(&p), Err(Error::DifferentAudits { .. })));
        let mut p = shards(2);
        p[1].1.binding = None;
        assert!(matches!(run(&p), Err(Error::Unbound { name }) if name == "part1"));
        let mut p = shards(2);
        p[0].1.profile_digest = "sha256:other".into();
        let e = run(&p).unwrap_err();
        assert!(matches!(e, Error::ProfileMismatch { .. }));
        assert_eq!(
            e.to_string(),
            "part0: made with profile sha256:other, not lab.profile.json"
        );
    }

    #[test]
    fn partial_format_round_trips() {
        let t = marked();
        let text = serde_json::to_string(&t).unwrap();
        assert_eq!(Totals::parse_partial("x", &text).unwrap(), t);
        let mut other = t.clone();
        other.format = "provmark-audit-partial/0".into();
        let text = serde_json::to_string(&other).unwrap();
        assert!(matches!(
            Totals::parse_partial("x", &text),
            Err(Error::Format { .. })
        ));
        assert!(matches!(
            Totals::parse_partial("x", "{}"),
            Err(Error::Parse { .. })
        ));
    }
}
