#!/usr/bin/env python3
"""Stage 3: full fine-tune of SmolLM2-135M-Instruct (loaded with transformers from the
default model's Q4_1 GGUF, dequantized to f32) on (chat-formatted prompt, teacher answer)
pairs, loss on the answer tokens only. Plain torch loop over the HF model, AdamW, seeded.

Contamination c: each training answer is the watermarked one with probability c (seeded
per prompt), else the unwatermarked answer to the same prompt; c = 0 is the control.
The answer tokens are the teacher's own token ids (no re-tokenization), followed by
<|im_end|> when the teacher stopped.
"""
import argparse, json, math, os, random, time
import torch

def load_jsonl(p):
    return {r["id"]: r for r in (json.loads(l) for l in open(p) if l.strip())}

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-dir", default="/work/exp/base")
    ap.add_argument("--base-gguf", default="SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--prompts", default="/work/exp/prompts/train200.jsonl")
    ap.add_argument("--marked", default="/work/exp/teacher/marked.jsonl")
    ap.add_argument("--plain", default="/work/exp/teacher/plain.jsonl")
    ap.add_argument("--contamination", type=float, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--max-len", type=int, default=256)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-examples", type=int, default=0, help="use only the first N prompts (0 = all)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(a.base_dir, gguf_file=a.base_gguf)
    model = AutoModelForCausalLM.from_pretrained(a.base_dir, gguf_file=a.base_gguf, torch_dtype=torch.float32)
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    prompts = [json.loads(l) for l in open(a.prompts) if l.strip()]
    if a.max_examples:
        prompts = prompts[: a.max_examples]
    marked, plain = load_jsonl(a.marked), load_jsonl(a.plain)
    rng = random.Random(a.seed)
    examples, n_marked, n_ans = [], 0, 0
    for p in prompts:
        use_marked = rng.random() < a.contamination
        r = (marked if use_marked else plain)[p["id"]]
        n_marked += use_marked
        ctx = tok.apply_chat_template([{"role": "user", "content": p["prompt"]}], tokenize=True, add_generation_prompt=True)
        ans = list(r["token_ids"])
        if r.get("finish_reason") == "stop" and (not ans or ans[-1] != im_end):
            ans.append(im_end)
        ids = (ctx + ans)[: a.max_len]
        labels = ([-100] * len(ctx) + ans)[: a.max_len]
        n_ans += sum(1 for x in labels if x != -100)
        examples.append((ids, labels))
    print(f"{len(examples)} examples, {n_marked} watermarked, {n_ans} answer tokens", flush=True)
    steps_per_epoch = math.ceil(len(examples) / a.batch)
    total = steps_per_epoch * a.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 3) * max(0.0, 1 - s / total))
    os.makedirs(a.out, exist_ok=True)
    log = open(os.path.join(a.out, "loss.jsonl"), "w")
    model.train()
    t0, step = time.time(), 0
    for ep in range(a.epochs):
        order = list(range(len(examples)))
        random.Random(a.seed * 1000 + ep).shuffle(order)
        for b in range(0, len(order), a.batch):
            batch = [examples[i] for i in order[b : b + a.batch]]
            L = max(len(x[0]) for x in batch)
            ids = torch.full((len(batch), L), tok.pad_token_id or 0)
            lab = torch.full((len(batch), L), -100)
            att = torch.zeros((len(batch), L), dtype=torch.long)
            for i, (x, y) in enumerate(batch):
                ids[i, : len(x)] = torch.tensor(x); lab[i, : len(y)] = torch.tensor(y); att[i, : len(x)] = 1
            loss = model(input_ids=ids, attention_mask=att, labels=lab).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step(); sched.step(); opt.zero_grad()
            step += 1
            rec = {"epoch": ep, "step": step, "loss": round(loss.item(), 4), "lr": sched.get_last_lr()[0], "elapsed_s": round(time.time() - t0, 1)}
            log.write(json.dumps(rec) + "\n"); log.flush()
            print(rec, flush=True)
    model.save_pretrained(os.path.join(a.out, "hf"), safe_serialization=True)
    json.dump({"contamination": a.contamination, "examples": len(examples), "watermarked": n_marked,
               "answer_tokens": n_ans, "epochs": a.epochs, "lr": a.lr, "batch": a.batch, "seed": a.seed,
               "steps": step, "train_s": round(time.time() - t0, 1)}, open(os.path.join(a.out, "train.json"), "w"), indent=1)

if __name__ == "__main__":
    main()
