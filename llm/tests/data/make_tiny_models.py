#!/usr/bin/env python3
"""Tiny random GGUF models of each supported architecture, and llama.cpp's
logits for them: the reference that the Rust forward pass must reproduce for
Qwen2 (q/k/v biases, rotary over halves) and Qwen3 (per-head q/k norms) as
well as llama.

Run once with the `gguf` and `llama-cpp-python` packages installed:

    python3 llm/tests/data/make_tiny_models.py llm/tests/data/tiny

It writes tiny-{llama,qwen2,qwen3}.gguf (weights seeded, Q8_0 matrices,
F32 norms and biases) and expected.json (llama.cpp's logits at every
position of a fixed token sequence, and its token ids for a few texts under
each model's pre-tokenizer). Only these outputs are committed.
"""
import json
import os
import sys

import numpy as np
import gguf
import llama_cpp

OUT = sys.argv[1]
VOCAB_BYTES = [bytes([b]) for b in range(256)]
HIDDEN, HEADS, KV_HEADS, FFN, LAYERS = 64, 4, 2, 96, 2
SEQUENCE = [72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100, 33, 256, 257, 258, 49, 50, 51]
TEXTS = ["Hello world", "abc 123 4567", "the the  the", "It's 12:30, ok?\n\nyes", "naïve café 東京", "pay$hello now", "a  \n\n  b"]


def byte_to_unicode():
    # GPT-2's printable mapping of bytes, as byte-level BPE vocabularies use.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


B2U = byte_to_unicode()
# Merges chosen so that pre-tokenization matters: digit pairs (split apart by
# the smollm and qwen2 rules), space runs, a word.
MERGES = [("1", "2"), ("Ġ", "Ġ"), ("t", "h"), ("th", "e"), ("Ġ", "the"), ("4", "5"), ("$", "h")]
TOKENS = [B2U[b] for b in range(256)] + [a + b for a, b in MERGES] + ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def write(arch, pre, path, rng):
    w = gguf.GGUFWriter(path, arch)
    head_dim = HIDDEN // HEADS if arch != "qwen3" else 32
    w.add_block_count(LAYERS)
    w.add_context_length(256)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(10000.0 if arch == "llama" else 1000000.0)
    if arch == "qwen3":
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(TOKENS)
    types = [1] * (len(TOKENS) - 3) + [3, 3, 3]
    w.add_token_types(types)
    w.add_token_merges([f"{a} {b}" for a, b in MERGES])
    w.add_bos_token_id(len(TOKENS) - 3)
    w.add_eos_token_id(len(TOKENS) - 1)
    w.add_add_bos_token(False)
    vocab = len(TOKENS)

    def mat(name, rows, cols, scale=0.3):
        x = (rng.standard_normal((rows, cols)) * scale / np.sqrt(cols) * 4).astype(np.float32)
        q = gguf.quants.quantize(x, gguf.GGMLQuantizationType.Q8_0)
        w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)

    def vec(name, n, around=1.0, spread=0.2):
        w.add_tensor(name, (around + spread * rng.standard_normal(n)).astype(np.float32))

    mat("token_embd.weight", vocab, HIDDEN, 3.0)
    vec("output_norm.weight", HIDDEN)
    if arch != "llama":
        mat("output.weight", vocab, HIDDEN)
    q_rows, kv_rows = HEADS * head_dim, KV_HEADS * head_dim
    for i in range(LAYERS):
        p = f"blk.{i}."
        vec(p + "attn_norm.weight", HIDDEN)
        mat(p + "attn_q.weight", q_rows, HIDDEN)
        mat(p + "attn_k.weight", kv_rows, HIDDEN)
        mat(p + "attn_v.weight", kv_rows, HIDDEN)
        if arch == "qwen2":
            vec(p + "attn_q.bias", q_rows, 0.0, 0.5)
            vec(p + "attn_k.bias", kv_rows, 0.0, 0.5)
            vec(p + "attn_v.bias", kv_rows, 0.0, 0.5)
        if arch == "qwen3":
            vec(p + "attn_q_norm.weight", head_dim)
            vec(p + "attn_k_norm.weight", head_dim)
        mat(p + "attn_output.weight", HIDDEN, q_rows)
        vec(p + "ffn_norm.weight", HIDDEN)
        mat(p + "ffn_gate.weight", FFN, HIDDEN)
        mat(p + "ffn_up.weight", FFN, HIDDEN)
        mat(p + "ffn_down.weight", HIDDEN, FFN)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


expected = {"llama_cpp_python": llama_cpp.__version__, "sequence": SEQUENCE, "models": {}}
for seed, (arch, pre) in enumerate([("llama", "smollm"), ("qwen2", "qwen2"), ("qwen3", "qwen2")]):
    path = os.path.join(OUT, f"tiny-{arch}.gguf")
    write(arch, pre, path, np.random.default_rng(seed + 1))
    llm = llama_cpp.Llama(model_path=path, n_ctx=64, logits_all=True, verbose=False, n_threads=1)
    llm.eval(SEQUENCE)
    logits = [[round(float(v), 5) for v in llm.scores[i]] for i in range(len(SEQUENCE))]
    ids = {t: [int(i) for i in llm.tokenize(t.encode(), add_bos=False, special=True)] for t in TEXTS}
    expected["models"][arch] = {"file": os.path.basename(path), "logits": logits, "ids": ids}
with open(os.path.join(OUT, "expected.json"), "w") as f:
    json.dump(expected, f)
    f.write("\n")
