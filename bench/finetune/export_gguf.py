#!/usr/bin/env python3
"""Stage 4: write a transformers llama model (a student, or the unmodified base as loaded
from its GGUF) back as an F32 GGUF with the gguf package.

Every metadata key of the base GGUF is copied (tokenizer, chat template, architecture
parameters), general.file_type is set to ALL_F32, and tensors get their llama.cpp names in
the base file's order. q_proj/k_proj rows are permuted back the way llama.cpp's
convert_hf_to_gguf.py does (transformers' GGUF loader undoes that permutation on load).
"""
import argparse, sys
import numpy as np, torch, gguf

def permute(w, n_head, n_head_kv=None):
    # llama.cpp convert_hf_to_gguf.py LlamaModel.permute
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

def field_value(f):
    t = f.types[0]
    if t == gguf.GGUFValueType.ARRAY:
        sub = f.types[1]
        if sub == gguf.GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode("utf-8") for i in f.data], t, sub
        return [f.parts[i].tolist()[0] for i in f.data], t, sub
    if t == gguf.GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode("utf-8"), t, None
    return f.parts[f.data[0]].tolist()[0], t, None

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-gguf", default="/work/exp/base/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--hf", help="a save_pretrained folder; default: the base GGUF itself, dequantized")
    ap.add_argument("--out", required=True)
    ap.add_argument("--no-permute", action="store_true", help="negative control for the round-trip check: skip the q/k permutation (a broken export)")
    a = ap.parse_args()
    torch.set_num_threads(2)
    from transformers import AutoModelForCausalLM
    import os
    if a.hf:
        model = AutoModelForCausalLM.from_pretrained(a.hf, torch_dtype=torch.float32)
    else:
        model = AutoModelForCausalLM.from_pretrained(os.path.dirname(a.base_gguf), gguf_file=os.path.basename(a.base_gguf), torch_dtype=torch.float32)
    cfg = model.config
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    reader = gguf.GGUFReader(a.base_gguf)
    arch = field_value(reader.fields["general.architecture"])[0]
    w = gguf.GGUFWriter(a.out, arch)
    for key, f in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        val, t, sub = field_value(f)
        if key == "general.file_type":
            val = int(gguf.LlamaFileType.ALL_F32)
        if t == gguf.GGUFValueType.ARRAY:
            # the writer infers the element type from the first element: str, int -> INT32, float -> FLOAT32
            assert sub in (gguf.GGUFValueType.STRING, gguf.GGUFValueType.INT32, gguf.GGUFValueType.FLOAT32), (key, sub)
            w.add_key_value(key, list(val), t)
        else:
            w.add_key_value(key, val, t)
    nh, nkv = cfg.num_attention_heads, cfg.num_key_value_heads
    def hf_tensor(name):
        if name == "token_embd.weight": return sd["model.embed_tokens.weight"]
        if name == "output_norm.weight": return sd["model.norm.weight"]
        if name == "output.weight": return sd["lm_head.weight"]
        _, i, part, _ = name.split(".")
        p = f"model.layers.{i}."
        m = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
             "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
             "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
             "ffn_down": "mlp.down_proj"}[part]
        x = sd[p + m + ".weight"]
        if part == "attn_q" and not a.no_permute: x = permute(x, nh, nh)
        if part == "attn_k" and not a.no_permute: x = permute(x, nh, nkv)
        return x
    names = [t.name for t in reader.tensors]
    for n in names:
        x = np.ascontiguousarray(hf_tensor(n).astype(np.float32))
        expect = tuple(int(d) for d in reversed(reader.tensors[names.index(n)].shape.tolist()))
        assert x.shape == expect, (n, x.shape, expect)
        w.add_tensor(n, x)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    print(f"wrote {a.out}: {len(names)} tensors, F32", file=sys.stderr)

if __name__ == "__main__":
    main()
