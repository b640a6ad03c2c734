#!/usr/bin/env python3
"""Expected next-token logits of the default model, from llama.cpp.

Run once with llama-cpp-python installed (llama.cpp is the reference runtime
for GGUF files):

    python3 llm/tests/data/make_reference_logits.py MODEL.gguf > llm/tests/data/reference_logits.json

For each prompt (token ids from llama.cpp's own tokenizer) it records the
logits after the whole prompt (the 64 largest, by id) and the 24-token greedy
continuation. Only the resulting numbers are committed.
"""
import json
import sys

import numpy as np
import llama_cpp

PROMPTS = [
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "def fibonacci(n):\n    ",
    "The quick brown fox jumps over the lazy dog. The quick brown fox",
    "Numbers: 1, 2, 3, 4, 5,",
]

llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=512, logits_all=True, verbose=False, n_threads=2)
cases = []
for text in PROMPTS:
    ids = llm.tokenize(text.encode(), add_bos=False, special=True)
    llm.reset()
    llm.eval(ids)
    logits = np.array(llm.scores[len(ids) - 1], dtype=np.float64)
    top = np.argsort(-logits)[:64]
    greedy = []
    ctx = list(ids)
    for _ in range(24):
        llm.reset()
        llm.eval(ctx)
        nxt = int(np.argmax(llm.scores[len(ctx) - 1]))
        greedy.append(nxt)
        ctx.append(nxt)
    cases.append({
        "text": text,
        "ids": [int(i) for i in ids],
        "top_ids": [int(i) for i in top],
        "top_logits": [round(float(logits[i]), 5) for i in top],
        "greedy": greedy,
    })
json.dump({"llama_cpp_python": llama_cpp.__version__, "cases": cases}, sys.stdout, indent=1)
print()
