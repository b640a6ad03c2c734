#!/usr/bin/env python3
"""llama.cpp prompt processing (prefill) speed on a GGUF, for comparison with
provmark's reading mode (`cargo run --release -p provmark-bench --bin prefill`).

Needs llama-cpp-python. Usage:
    python3 bench/scripts/llamacpp_prefill.py MODEL.gguf TOKENS ROUNDS THREADS...
Reads the first TOKENS tokens of bench/data/python-docs-topics.txt as one
batch (n_batch = n_ubatch = TOKENS, f32 KV cache as provmark keeps), ROUNDS
times per thread count, in two modes: `last` (logits of the last position
only, what llama-bench's pp measures) and `all` (logits at every position,
what reading mode needs). Prints a Markdown table of positions/s (best and
median round)."""
import os, statistics, sys, time

import llama_cpp

path, tokens, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
threads = [int(t) for t in sys.argv[4:]] or [1, 2]
here = os.path.dirname(os.path.abspath(__file__))
text = open(os.path.join(here, "..", "data", "python-docs-topics.txt"), encoding="utf-8").read()
print(f"llama-cpp-python {llama_cpp.__version__}, {tokens} tokens, {rounds} rounds\n")
print("| llama.cpp logits | threads | positions/s best | median |")
print("|---|---:|---:|---:|")
for t in threads:
    for mode in ("last", "all"):
        llm = llama_cpp.Llama(
            model_path=path,
            n_ctx=max(512, tokens),
            n_batch=tokens,
            n_ubatch=tokens,
            n_threads=t,
            n_threads_batch=t,
            logits_all=(mode == "all"),
            type_k=llama_cpp.GGML_TYPE_F32,
            type_v=llama_cpp.GGML_TYPE_F32,
            verbose=False,
        )
        ids = llm.tokenize(text.encode(), add_bos=False, special=False)[:tokens]
        assert len(ids) == tokens
        rates = []
        for _ in range(rounds):
            llm.reset()  # eval then drops the cached positions
            start = time.perf_counter()
            llm.eval(ids)
            rates.append(tokens / (time.perf_counter() - start))
        print(f"| {mode} | {t} | {max(rates):.0f} | {statistics.median(rates):.0f} |")
        del llm
