#!/usr/bin/env python3
"""llama.cpp decode speed on a GGUF, for comparison with provmark's runtime.

Needs llama-cpp-python. Usage: python3 bench/scripts/llamacpp_speed.py MODEL.gguf THREADS
Prints tokens/s for 200 tokens (sampling included), three rounds."""
import time, sys, llama_cpp
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=512, verbose=False, n_threads=int(sys.argv[2]))
prompt = "<|im_start|>user\nWrite a long story about a lighthouse keeper.<|im_end|>\n<|im_start|>assistant\n"
ids = llm.tokenize(prompt.encode(), add_bos=False, special=True)
for r in range(3):
    llm.reset(); llm.eval(ids)
    t = time.perf_counter(); n = 0
    for _ in range(200):
        tok = llm.sample(temp=1.0, top_p=1.0, top_k=0)
        llm.eval([tok]); n += 1
    dt = time.perf_counter() - t
    print(f"llama.cpp threads {sys.argv[2]} round {r}: {n/dt:.1f} tokens/s (sampling included)")
