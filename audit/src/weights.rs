//! The open-weight audit ("reading mode", Sander et al. 2024): at every
//! position of the lab's texts the suspect predicts its most likely next
//! token given the real prefix; the tuple (real window, prediction) is
//! scored against the lab's schedule, each distinct tuple once across the
//! corpus (spec §8.1). The suspect must share the profile's tokenizer.

use std::path::{Path, PathBuf};

use provmark_verify::corpus::{DistinctTuples, Shard, TupleSet};
use provmark_verify::TextTokenizer;

use crate::corpus::{stream_corpus, AuditTotals};
use crate::{score_pair, Counts, Error, Event, Lab, NullKeys, Progress};

/// What a weights audit reads and how.
pub struct WeightsAuditConfig {
    /// The suspect model (GGUF of the llama, Qwen2 or Qwen3 family). It and
    /// the reference run at [`provmark_llm::model::Precision::AsStored`].
    pub suspect: PathBuf,
    /// A clean reference model (same tokenizer), read over the same texts.
    pub reference_model: Option<PathBuf>,
    /// The lab's watermarked texts (JSONL with `field`, or text files).
    pub texts: Vec<String>,
    /// JSONL field holding the text.
    pub field: String,
    /// Compute threads for the models (default: all cores).
    pub threads: Option<usize>,
    /// The key-swap null.
    pub null: NullKeys,
}

/// Runs a weights audit: loads each model ([`Event::LoadingModel`]), checks
/// its tokenizer against the profile's, reads the texts
/// ([`Event::TextRead`] per text) and scores the tuples.
pub fn run(
    lab: &Lab,
    config: &WeightsAuditConfig,
    progress: &dyn Progress,
) -> Result<AuditTotals, Error> {
    let threads = config
        .threads
        .unwrap_or_else(provmark_llm::engine::default_threads);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(Error::Threads)?;
    let read = |path: &Path| read_with(path, lab, config, &pool, progress);
    let suspect = read(&config.suspect)?;
    let reference = match &config.reference_model {
        Some(path) => Some(read(path)?),
        None => None,
    };
    score_pair(lab, config.null, &suspect, reference.as_ref(), progress)
}

/// The model's top-1 predictions over the lab's texts, as tuples.
fn read_with(
    path: &Path,
    lab: &Lab,
    config: &WeightsAuditConfig,
    pool: &rayon::ThreadPool,
    progress: &dyn Progress,
) -> Result<(Counts, DistinctTuples), Error> {
    let name = path.display().to_string();
    progress.event(Event::LoadingModel { name: &name });
    // The suspect's own weights (F32 kept, F16/BF16 widened), not a Q8_0
    // re-quantization: an inherited bias of a few 1e-4 is below that noise.
    let model = provmark_llm::runtime::Runtime::load_with(
        path,
        &name,
        provmark_llm::model::Precision::AsStored,
    )?;
    let tokenizer = TextTokenizer::from_bytes(model.tokenizer.to_json().as_bytes(), &name)?;
    if tokenizer.digest() != lab.profile.tokenizer() {
        return Err(Error::TokenizerMismatch {
            name,
            expected: lab.profile.tokenizer().to_string(),
            got: tokenizer.digest().to_string(),
        });
    }
    let mut set = TupleSet::new(lab.profile.context(), Shard::ALL)?;
    let mut errors = 0usize;
    progress.event(Event::ReadingStarted { reader: &name });
    let mut failure = None;
    let count = stream_corpus(
        &config.texts,
        &config.field,
        &tokenizer,
        &mut errors,
        progress,
        &mut |batch| {
            for ids in batch {
                if failure.is_some() {
                    return;
                }
                let predicted = pool.install(|| {
                    provmark_llm::reading::predict_top1(&model.model, ids, &mut |_, _| {})
                });
                match predicted {
                    Ok(p) => {
                        let n = p.len();
                        if let Err(e) = set.add_predictions(&ids[..n], &p) {
                            failure = Some(e.to_string());
                        }
                    }
                    Err(e) => failure = Some(e.to_string()),
                }
                progress.event(Event::TextRead);
            }
        },
    )?;
    progress.event(Event::ReadingFinished);
    if let Some(message) = failure {
        return Err(Error::Reading { name, message });
    }
    let tuples = set.finish();
    let counts = Counts {
        texts: count,
        errors,
        distinct: tuples.len(),
        filter_windows: None,
        dropped: 0,
    };
    Ok((counts, tuples))
}
