//! The corpus audit (spec §8.1): every (window, token) tuple of every text
//! of a suspect corpus is pooled and counted once across the corpus; the
//! exact test and the key-swap null run on the distinct tuples. With a
//! filter Φ (the lab's own watermarked outputs) only tuples whose window the
//! lab marked are kept. A shard keeps the tuples whose window hashes to it,
//! so separate jobs split a large audit exactly
//! ([`provmark_verify::attribution::merge`] adds them up).

use provmark_verify::corpus::{DistinctTuples, Shard, TupleSet, WindowSet};
use provmark_verify::input::{
    InputFormat, Locations, ReadOptions, RecordReader, DEFAULT_MAX_RECORD_BYTES,
};
use provmark_verify::{Normalization, TextTokenizer};
use rayon::prelude::*;

use crate::{score_pair, Counts, Error, Event, Lab, NullKeys, Progress, Totals};

/// Texts tokenized per parallel batch; only one batch is held at a time.
const BATCH: usize = 4096;

/// What a corpus audit reads and how.
pub struct CorpusAuditConfig {
    /// The suspect corpus: files or `-` (JSONL with `field`, or one text per
    /// file; the format is guessed from the name).
    pub inputs: Vec<String>,
    /// A clean reference corpus (same formats), run through the same
    /// pipeline; empty for none.
    pub reference: Vec<String>,
    /// The lab's own watermarked outputs (the filter Φ); empty for none.
    pub filter_from: Vec<String>,
    /// JSONL field holding the text.
    pub field: String,
    /// The tokenizer matching the profile.
    pub tokenizer: TextTokenizer,
    /// How every text (suspect, reference and the filter's) is normalised
    /// before it is tokenized (spec §5.1).
    pub normalization: Normalization,
    /// The part of the tuple space to keep ([`Shard::ALL`] for a whole audit).
    pub shard: Shard,
    /// The key-swap null.
    pub null: NullKeys,
    /// Where inputs are read when not at their names (a verifier's files).
    pub locations: Locations,
}

/// The totals of an audit: the suspect's and the clean reference's.
#[derive(Clone, Debug)]
pub struct AuditTotals {
    /// The suspect's.
    pub suspect: Totals,
    /// The clean reference's, when one was given.
    pub reference: Option<Totals>,
}

impl AuditTotals {
    /// Records that could not be read, suspect and reference together.
    pub fn unreadable(&self) -> usize {
        self.suspect.unreadable + self.reference.as_ref().map_or(0, |r| r.unreadable)
    }
}

/// Runs a corpus audit: the filter Φ (when given), the suspect's distinct
/// tuples and the reference's, each scored under the key and the key-swap
/// null. Unreadable records are reported as [`Event::RecordError`] and
/// counted; a file that cannot be opened or read stops the audit.
pub fn run(
    lab: &Lab,
    config: &CorpusAuditConfig,
    progress: &dyn Progress,
) -> Result<AuditTotals, Error> {
    config.tokenizer.check_profile(&lab.profile, false)?;
    let h = lab.profile.context();
    let (field, tokenizer) = (&config.field, &config.tokenizer);
    let normalization = config.normalization;
    let filter = lab_windows(
        &config.filter_from,
        &config.locations,
        field,
        (tokenizer, normalization),
        h,
        progress,
    )?;
    let collect = |inputs: &[String]| {
        collect_corpus(
            (inputs, &config.locations),
            field,
            (tokenizer, normalization),
            h,
            config.shard,
            filter.as_ref(),
            progress,
        )
    };
    let suspect = collect(&config.inputs)?;
    let reference = if config.reference.is_empty() {
        None
    } else {
        Some(collect(&config.reference)?)
    };
    score_pair(lab, config.null, &suspect, reference.as_ref(), progress)
}

/// Streams every text of `inputs` through `sink` in tokenized batches
/// (bounded memory); unreadable records are reported and counted in
/// `errors`. Returns the number of texts read.
pub(crate) fn stream_corpus(
    inputs: &[String],
    locations: &Locations,
    field: &str,
    reading: (&TextTokenizer, Normalization),
    errors: &mut usize,
    progress: &dyn Progress,
    sink: &mut dyn FnMut(&[Vec<u32>]),
) -> Result<usize, Error> {
    let records = (inputs, locations);
    stream_records(records, field, reading, errors, progress, &mut |batch| {
        let ids: Vec<Vec<u32>> = batch.drain(..).map(|t| t.ids).collect();
        sink(&ids)
    })
}

/// One record's text as read: its id, the text and its token ids.
pub(crate) struct ReadText {
    /// The record's `id` field, else `file:line`.
    pub id: String,
    /// The text, normalised.
    pub text: String,
    /// Its ids under the lab's tokenizer.
    pub ids: Vec<u32>,
}

/// As [`stream_corpus`], with each text's record id (its `id` field, else
/// `file:line`) beside its tokens; `sink` may take the batch's contents.
pub(crate) fn stream_records(
    (inputs, locations): (&[String], &Locations),
    field: &str,
    (tokenizer, normalization): (&TextTokenizer, Normalization),
    errors: &mut usize,
    progress: &dyn Progress,
    sink: &mut dyn FnMut(&mut Vec<ReadText>),
) -> Result<usize, Error> {
    let options = ReadOptions {
        field: field.to_string(),
        max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
    };
    let mut texts = 0;
    for name in inputs {
        let path = locations.path(name);
        let mut reader =
            RecordReader::open_at(name, path, InputFormat::guess(name), options.clone())
                .map_err(|source| Error::Open {
                    name: name.clone(),
                    source,
                })?
                .peekable();
        while reader.peek().is_some() {
            let records = reader
                .by_ref()
                .take(BATCH)
                .collect::<std::io::Result<Vec<_>>>()
                .map_err(|source| Error::Read {
                    name: name.clone(),
                    source,
                })?;
            let encoded: Vec<Result<ReadText, String>> = records
                .into_par_iter()
                .map(|r| {
                    let (text, _) = normalization.apply_owned(r.text?);
                    let ids = tokenizer
                        .encode(&text)
                        .map_err(|e| format!("{}: {e}", r.id))?;
                    Ok(ReadText {
                        id: r.id,
                        text,
                        ids,
                    })
                })
                .collect();
            let mut ok = Vec::with_capacity(encoded.len());
            for e in encoded {
                match e {
                    Ok(text) => ok.push(text),
                    Err(message) => {
                        progress.event(Event::RecordError { message: &message });
                        *errors += 1;
                    }
                }
            }
            texts += ok.len();
            sink(&mut ok);
        }
    }
    Ok(texts)
}

/// The distinct tuples of a corpus (one shard of them), with the filter Φ
/// applied when given.
fn collect_corpus(
    (inputs, locations): (&[String], &Locations),
    field: &str,
    reading: (&TextTokenizer, Normalization),
    h: usize,
    shard: Shard,
    filter: Option<&WindowSet>,
    progress: &dyn Progress,
) -> Result<(Counts, DistinctTuples), Error> {
    let mut errors = 0usize;
    let mut set = TupleSet::new(h, shard)?;
    let texts = stream_corpus(
        inputs,
        locations,
        field,
        reading,
        &mut errors,
        progress,
        &mut |batch| {
            for t in batch {
                set.add_text(t);
            }
        },
    )?;
    finish_tuples(set, texts, errors, filter)
}

/// The distinct tuples of a collection after the filter Φ (when given),
/// with the counts of every stage.
pub(crate) fn finish_tuples(
    set: TupleSet,
    texts: usize,
    errors: usize,
    filter: Option<&WindowSet>,
) -> Result<(Counts, DistinctTuples), Error> {
    let mut tuples = set.finish();
    let distinct = tuples.len();
    let dropped = match filter {
        Some(f) => tuples.retain_windows(f)?,
        None => 0,
    };
    let counts = Counts {
        texts,
        errors,
        distinct,
        filter_windows: filter.map(WindowSet::len),
        dropped,
    };
    Ok((counts, tuples))
}

/// The lab's windows from its own outputs (the filter Φ), if any are
/// given; any unreadable text of them is an error (the filter would be
/// incomplete).
pub(crate) fn lab_windows(
    filter_from: &[String],
    locations: &Locations,
    field: &str,
    reading: (&TextTokenizer, Normalization),
    h: usize,
    progress: &dyn Progress,
) -> Result<Option<WindowSet>, Error> {
    if filter_from.is_empty() {
        return Ok(None);
    }
    let mut errors = 0;
    let mut teacher = WindowSet::new(h)?;
    stream_corpus(
        filter_from,
        locations,
        field,
        reading,
        &mut errors,
        progress,
        &mut |batch| teacher.add_texts(batch.iter().map(|t| &t[..])),
    )?;
    if errors > 0 {
        return Err(Error::FilterIncomplete { errors });
    }
    Ok(Some(teacher.finish()))
}
