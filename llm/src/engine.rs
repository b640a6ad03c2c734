//! Continuous batching: one engine thread owns the decode loop; any number
//! of callers submit requests and receive tokens through a sink.
//!
//! Each step runs every active sequence's new tokens through the model at
//! once (prompt chunks of sequences still prefilling, one token for the
//! others), so the weights are read once per step for the whole batch. Then
//! each sequence's next token is chosen from the full logits by its own
//! [`ResponseEmbedder`] (from the engine's [`Embedder`]; it remembers the
//! windows already marked in that answer) or a plain [`Sampler`] on a
//! control engine.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use provmark_watermark::rand_core::SeedableRng;
use provmark_watermark::{Embedder, ResponseEmbedder, Sampler, SamplingConfig};
use rand_chacha::ChaCha20Rng;

use crate::logprobs::{logprobs, Logprobs};
use crate::model::{KvCache, Step};
use crate::runtime::Runtime;
use crate::stop::StopText;
use crate::Error;

/// Engine settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Compute threads for the model (a dedicated pool).
    pub threads: usize,
    /// Sequences decoded together at most; more requests wait in a queue.
    pub max_batch: usize,
    /// Prompt tokens prefilled per step at most, so long prompts do not
    /// stall running answers.
    pub prefill_chunk: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            threads: default_threads(),
            max_batch: 8,
            prefill_chunk: 256,
        }
    }
}

/// The default compute threads: the available cores, at most 8 (beyond
/// that a 135M–1B model gains little and a busy host loses a lot, because
/// idle pool threads spin before they sleep).
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8)
}

/// One generation request, already tokenized.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Prompt token ids (chat template applied).
    pub prompt: Vec<u32>,
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Temperature, top-k, top-p.
    pub sampling: SamplingConfig,
    /// Seed of the sampling randomness (KGW draws and positions too short
    /// for a window); the same seed and prompt give the same answer.
    pub seed: u64,
    /// Stop strings: the answer ends before the first occurrence of any of
    /// them in its text (see [`StopText`]); none when empty.
    pub stop: Vec<String>,
    /// Report each generated token's log-probability and this many most
    /// likely alternatives (at most [`crate::logprobs::MAX_TOP_LOGPROBS`])
    /// under the model's own distribution; `None`: no log-probabilities.
    pub logprobs: Option<usize>,
}

/// Why an answer ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finish {
    /// A stop token (not included in the answer) or stop string (neither
    /// it nor anything after it is included).
    Stop,
    /// `max_tokens` or the model's context was reached.
    Length,
    /// The engine failed (the message says why).
    Error(String),
}

impl Finish {
    /// OpenAI's name for the reason.
    pub fn as_str(&self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
            Finish::Error(_) => "error",
        }
    }
}

/// A finished answer.
#[derive(Clone, Debug)]
pub struct Answer {
    /// Why it ended.
    pub finish: Finish,
    /// Generated token ids (stop token excluded; the tokens that made a
    /// stop string are included).
    pub tokens: Vec<u32>,
    /// The answer's text: exactly the concatenation of every
    /// [`Event::Token`] text and then [`Answer::tail`]. An answer cut inside
    /// a multi-byte character ends with U+FFFD for its incomplete bytes.
    pub text: String,
    /// The end of `text` that no [`Event::Token`] carried (text held back
    /// for an incomplete character or a possible stop string); a stream
    /// sends it last.
    pub tail: String,
    /// Generated tokens (of `tokens`) whose choice the key could change
    /// (spec §6.2); 0 on a control engine.
    pub marked_tokens: usize,
    /// One entry per token of `tokens` when the request asked for them.
    pub logprobs: Vec<Logprobs>,
    /// Prompt length in tokens.
    pub prompt_tokens: usize,
    /// Seconds waiting for a batch slot.
    pub queue_s: f64,
    /// Seconds from admission to the first generated token.
    pub prefill_s: f64,
    /// Seconds from the first to the last generated token.
    pub decode_s: f64,
    /// Seconds spent choosing tokens (watermark or plain sampling).
    pub sampling_s: f64,
}

/// What a sink receives.
#[derive(Debug)]
pub enum Event {
    /// A generated token and the text it completes (empty while a UTF-8
    /// character is still incomplete).
    Token {
        /// Token id.
        id: u32,
        /// New text of the answer (empty while a UTF-8 character is
        /// incomplete or the text might begin a stop string).
        text: String,
        /// Its log-probabilities, when the request asked for them.
        logprobs: Option<Logprobs>,
    },
    /// The end, with the whole answer.
    Done(Answer),
}

/// Receives a request's events on the engine thread.
pub trait Sink: Send {
    /// Takes one event; `false` cancels the request (e.g. the client went
    /// away).
    fn event(&mut self, event: Event) -> bool;

    /// Polled before every engine step, in every phase (queued,
    /// prefilling, decoding): `true` drops the request at once, with no
    /// further event.
    fn cancelled(&self) -> bool {
        false
    }
}

impl<F: FnMut(Event) -> bool + Send> Sink for F {
    fn event(&mut self, event: Event) -> bool {
        self(event)
    }
}

struct Job {
    request: Request,
    sink: Box<dyn Sink>,
    queued: Instant,
}

/// The engine handle; dropping it (or [`Engine::shutdown`]) lets running
/// requests finish and stops the thread.
pub struct Engine {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Option<JoinHandle<()>>,
    runtime: Arc<Runtime>,
    watermarked: bool,
}

impl Engine {
    /// Starts the engine thread. `embedder` = `None` runs without a
    /// watermark (control arm).
    pub fn start(
        runtime: Arc<Runtime>,
        embedder: Option<Embedder>,
        config: EngineConfig,
    ) -> Result<Engine, Error> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads.max(1))
            .thread_name(|i| format!("provmark-model-{i}"))
            .build()
            .map_err(|e| Error::Runtime(format!("cannot start compute threads: {e}")))?;
        let (tx, rx) = mpsc::channel();
        let rt = Arc::clone(&runtime);
        let watermarked = embedder.is_some();
        let thread = std::thread::Builder::new()
            .name("provmark-engine".into())
            .spawn(move || run(&rt, &pool, embedder.as_ref(), &config, rx))
            .map_err(|e| Error::Runtime(format!("cannot start the engine thread: {e}")))?;
        Ok(Engine {
            jobs: Mutex::new(Some(tx)),
            thread: Some(thread),
            runtime,
            watermarked,
        })
    }

    /// The model bundle.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Whether answers carry the watermark.
    pub fn watermarked(&self) -> bool {
        self.watermarked
    }

    /// Queues a request. Fails at once if it cannot fit the model's context
    /// or the engine has stopped.
    pub fn submit(&self, request: Request, sink: Box<dyn Sink>) -> Result<(), Error> {
        let context = self.runtime.model.config().context;
        if request.prompt.is_empty() {
            return Err(Error::Runtime("the prompt is empty".into()));
        }
        if request.prompt.len() >= context {
            return Err(Error::Runtime(format!(
                "the prompt has {} tokens; the model's context is {context}",
                request.prompt.len()
            )));
        }
        let vocab = self.runtime.model.config().vocab as u32;
        if let Some(bad) = request.prompt.iter().find(|&&t| t >= vocab) {
            return Err(Error::Runtime(format!(
                "prompt token {bad} is outside the vocabulary"
            )));
        }
        let guard = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let tx = guard
            .as_ref()
            .ok_or_else(|| Error::Runtime("the engine is shutting down".into()))?;
        tx.send(Job {
            request,
            sink,
            queued: Instant::now(),
        })
        .map_err(|_| Error::Runtime("the engine has stopped".into()))
    }

    /// Runs `requests` together (batched by the engine) and returns their
    /// answers in request order, blocking until all are done.
    pub fn run_batch(&self, requests: Vec<Request>) -> Result<Vec<Answer>, Error> {
        let mut receivers = Vec::with_capacity(requests.len());
        for r in requests {
            let (tx, rx) = mpsc::channel();
            self.submit(
                r,
                Box::new(move |e| {
                    if let Event::Done(a) = e {
                        let _ = tx.send(a);
                    }
                    true
                }),
            )?;
            receivers.push(rx);
        }
        receivers
            .into_iter()
            .map(|rx| {
                rx.recv()
                    .map_err(|_| Error::Runtime("the engine stopped".into()))
            })
            .collect()
    }

    /// Stops accepting requests, lets running ones finish, joins the thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Chooses tokens; each sequence owns one (scratch buffers included, and
/// the windows already marked in its answer, spec §6.1), so the batch's
/// choices run in parallel.
enum Chooser {
    Watermark(Box<ResponseEmbedder>),
    Plain(Sampler),
}

impl Chooser {
    /// The chooser of one new answer.
    fn for_answer(embedder: Option<&Embedder>) -> Chooser {
        match embedder {
            Some(e) => Chooser::Watermark(Box::new(e.response())),
            None => Chooser::Plain(Sampler::default()),
        }
    }
}

struct Active {
    job: Job,
    chooser: Chooser,
    /// The token chosen in this step, before the stop/length checks, with
    /// whether the key could change it and its log-probabilities.
    chosen: Option<(u32, bool, Option<Logprobs>)>,
    cache: KvCache,
    /// Prompt then generated tokens: the watermark's context.
    context: Vec<u32>,
    /// How many of `context` the cache holds.
    fed: usize,
    generated: Vec<u32>,
    /// Incremental detokenization: `generated[prefix..read]` is the text
    /// already emitted that the next tokens are decoded against.
    text_prefix: usize,
    text_read: usize,
    /// Stop strings and the text held back for them.
    stop: StopText,
    /// The text sent so far.
    sent: String,
    /// A stop string ended the answer.
    stop_found: bool,
    marked: usize,
    logprobs: Vec<Logprobs>,
    rng: ChaCha20Rng,
    admitted: Instant,
    first_token: Option<Instant>,
    sampling_s: f64,
}

fn run(
    rt: &Runtime,
    pool: &rayon::ThreadPool,
    embedder: Option<&Embedder>,
    config: &EngineConfig,
    rx: mpsc::Receiver<Job>,
) {
    let mut waiting: VecDeque<Job> = VecDeque::new();
    let mut active: Vec<Active> = Vec::new();
    let mut logits = Vec::new();
    let vocab = rt.model.config().vocab;
    let context_len = rt.model.config().context;
    loop {
        if active.is_empty() && waiting.is_empty() {
            match rx.recv() {
                Ok(job) => waiting.push_back(job),
                Err(_) => return,
            }
        }
        while let Ok(job) = rx.try_recv() {
            waiting.push_back(job);
        }
        // Clients that left stop costing anything, whatever the phase.
        waiting.retain(|j| !j.sink.cancelled());
        active.retain(|a| !a.job.sink.cancelled());
        if active.is_empty() && waiting.is_empty() {
            continue;
        }
        while active.len() < config.max_batch.max(1) {
            let Some(job) = waiting.pop_front() else {
                break;
            };
            active.push(Active {
                chooser: Chooser::for_answer(embedder),
                chosen: None,
                cache: rt.model.new_cache(),
                context: job.request.prompt.clone(),
                fed: 0,
                generated: Vec::new(),
                text_prefix: 0,
                text_read: 0,
                stop: StopText::new(&job.request.stop),
                sent: String::new(),
                stop_found: false,
                marked: 0,
                logprobs: Vec::new(),
                rng: ChaCha20Rng::seed_from_u64(job.request.seed),
                admitted: Instant::now(),
                first_token: None,
                sampling_s: 0.0,
                job,
            });
        }
        // This step's tokens: a prompt chunk or the last generated token.
        let mut budget = config.prefill_chunk.max(1);
        let mut ranges = Vec::with_capacity(active.len());
        for a in &active {
            let remaining = a.context.len() - a.fed;
            let take = if remaining > 1 {
                let t = remaining.min(budget).max(1);
                budget = budget.saturating_sub(t);
                t
            } else {
                remaining
            };
            ranges.push(a.fed..a.fed + take);
        }
        let result = {
            let mut steps: Vec<Step<'_>> = active
                .iter_mut()
                .zip(&ranges)
                .map(|(a, r)| Step {
                    cache: &mut a.cache,
                    tokens: &a.context[r.clone()],
                })
                .collect();
            pool.install(|| rt.model.forward(&mut steps, &mut logits))
        };
        if let Err(e) = result {
            for a in active.drain(..) {
                finish(rt, a, Finish::Error(e.to_string()));
            }
            continue;
        }
        // Every sequence had a row (ranges are never empty). Choose the
        // token of each sequence done prefilling, in parallel.
        for (a, range) in active.iter_mut().zip(&ranges) {
            a.fed = range.end;
        }
        let logits = &logits;
        pool.install(|| {
            use rayon::prelude::*;
            active.par_iter_mut().enumerate().for_each(|(row, a)| {
                if a.fed < a.context.len() {
                    return; // still prefilling
                }
                let step_logits = &logits[row * vocab..(row + 1) * vocab];
                let t = Instant::now();
                let cfg = a.job.request.sampling;
                let (token, marked) = match &mut a.chooser {
                    Chooser::Watermark(e) => {
                        let token = e.next_token(&a.context, step_logits, &cfg, &mut a.rng);
                        (token, e.last_marked())
                    }
                    Chooser::Plain(s) => (s.next_token(step_logits, &cfg, &mut a.rng), false),
                };
                a.sampling_s += t.elapsed().as_secs_f64();
                let lp = a
                    .job
                    .request
                    .logprobs
                    .map(|n| logprobs(step_logits, token, n));
                a.chosen = Some((token, marked, lp));
            });
        });
        let mut keep = Vec::with_capacity(active.len());
        for mut a in active.drain(..) {
            let Some((token, marked, lp)) = a.chosen.take() else {
                keep.push(a);
                continue;
            };
            a.first_token.get_or_insert_with(Instant::now);
            if rt.stop_tokens().contains(&token) {
                finish(rt, a, Finish::Stop);
                continue;
            }
            a.context.push(token);
            a.generated.push(token);
            a.marked += marked as usize;
            if let Some(lp) = &lp {
                a.logprobs.push(lp.clone());
            }
            let piece = new_text(rt, &mut a);
            let released = a.stop.push(&piece);
            a.sent.push_str(&released.text);
            let event = Event::Token {
                id: token,
                text: released.text,
                logprobs: lp,
            };
            if !a.job.sink.event(event) {
                continue; // cancelled
            }
            if released.stopped {
                a.stop_found = true;
                finish(rt, a, Finish::Stop);
                continue;
            }
            if a.generated.len() >= a.job.request.max_tokens || a.context.len() >= context_len {
                finish(rt, a, Finish::Length);
                continue;
            }
            keep.push(a);
        }
        active = keep;
    }
}

/// The text completed by the newest token, decoding only the few tokens
/// since the last emitted text (so a long answer costs O(1) per token); held
/// back while the text ends inside a multi-byte character.
fn new_text(rt: &Runtime, a: &mut Active) -> String {
    let (Ok(before), Ok(after)) = (
        rt.decode(&a.generated[a.text_prefix..a.text_read]),
        rt.decode(&a.generated[a.text_prefix..]),
    ) else {
        return String::new();
    };
    if after.ends_with('\u{fffd}') || !after.starts_with(&before) {
        return String::new();
    }
    a.text_prefix = a.text_read;
    a.text_read = a.generated.len();
    after[before.len()..].to_string()
}

/// The text of the tokens since the last emitted text, incomplete
/// characters included (as U+FFFD): what an answer ending now still owes.
fn unsent_text(rt: &Runtime, a: &Active) -> String {
    let (Ok(before), Ok(after)) = (
        rt.decode(&a.generated[a.text_prefix..a.text_read]),
        rt.decode(&a.generated[a.text_prefix..]),
    ) else {
        return String::new();
    };
    after
        .strip_prefix(before.as_str())
        .map_or(String::new(), str::to_string)
}

fn finish(rt: &Runtime, mut a: Active, mut reason: Finish) {
    let end = Instant::now();
    // The same rule for a stream and a whole answer: the text held back
    // (an incomplete character, a possible stop string) ends both, unless
    // a stop string was found.
    let tail = if a.stop_found {
        String::new()
    } else {
        let released = a.stop.push(&unsent_text(rt, &a));
        if released.stopped {
            reason = Finish::Stop;
            released.text
        } else {
            released.text + &a.stop.flush()
        }
    };
    let text = std::mem::take(&mut a.sent) + &tail;
    let first = a.first_token.unwrap_or(end);
    let answer = Answer {
        finish: reason,
        prompt_tokens: a.job.request.prompt.len(),
        tokens: std::mem::take(&mut a.generated),
        text,
        tail,
        marked_tokens: a.marked,
        logprobs: std::mem::take(&mut a.logprobs),
        queue_s: (a.admitted - a.job.queued).as_secs_f64(),
        prefill_s: (first - a.admitted).as_secs_f64(),
        decode_s: (end - first).as_secs_f64(),
        sampling_s: a.sampling_s,
    };
    a.job.sink.event(Event::Done(answer));
}
