#!/usr/bin/env python3
"""Print markdown tables (for bench/RESULTS.md) from /work/exp/audits/*/ and students/*."""
import json, os, sys
E = sys.argv[1] if len(sys.argv) > 1 else "/work/exp"
names = [("c100", "100% watermarked"), ("c0", "control: 0% (unwatermarked answers)")]
print("#### Black-box: the student's answers to 80 held-out-family prompts (T = 1, ≤ 160 tokens), `audit corpus`, 999 null keys\n")
print("| student | texts | suspect tokens | scored tuples | log10 p | key-swap p | verdict |")
print("|---|---:|---:|---:|---:|---:|---|")
for n, label in names:
    d = os.path.join(E, "audits", n)
    if not os.path.isdir(d): continue
    fs = sorted((f for f in os.listdir(d) if f.startswith("corpus_prefix")), key=lambda f: int(f[13:-5]))
    for f in fs:
        k = int(f[13:-5])
        toks = sum(json.loads(l)["completion_tokens"] for l in open(os.path.join(d, "blackbox.jsonl")).readlines()[:k])
        r = json.load(open(os.path.join(d, f)))
        print(f"| {label} | {k} | {toks} | {r['scored']} | {r['log10_p']:.2f} | {r['key_swap']['p_value']:.3f} | {r['verdict']} |")
print()
print("#### Reading mode: `audit weights` (top-1 of the suspect over the lab's watermarked texts), 999 null keys\n")
print("| texts | student | positions | scored | log10 p | key-swap p | verdict | reference (base F32) log10 p | reference key-swap p |")
print("|---|---|---:|---:|---:|---:|---|---:|---:|")
for tag, what in (("reading_a", "(a) 80 lab answers to held-out prompts (12,183 tokens), never seen"),
                  ("reading_b", "(b) the 104 lab answers the 100% student trained on (14,834 tokens)")):
    for n, label in names:
        f = os.path.join(E, "audits", n, tag + ".json")
        if not os.path.exists(f):
            print(f"| {what} | {label} | not run (time) | | | | | | |"); continue
        r = json.load(open(f)); ref = r.get("reference")
        rs = f"{ref['log10_p']:.2f} | {ref['key_swap']['p_value']:.3f}" if ref else "(see 100% row) | "
        print(f"| {what} | {label} | {r['positions']} | {r['scored']} | {r['log10_p']:.2f} | {r['key_swap']['p_value']:.3f} | {r['verdict']} | {rs} |")
print()
print("#### Training\n")
print("| student | examples | watermarked | answer tokens | steps | train time (s) | loss first → last step |")
print("|---|---:|---:|---:|---:|---:|---|")
for n, label in names:
    f = os.path.join(E, "students", n, "train.json")
    if not os.path.exists(f): continue
    t = json.load(open(f)); L = [json.loads(l)["loss"] for l in open(os.path.join(E, "students", n, "loss.jsonl"))]
    print(f"| {label} | {t['examples']} | {t['watermarked']} | {t['answer_tokens']} | {t['steps']} | {t['train_s']} | {L[0]} → {L[-1]} (all: {', '.join(map(str, L))}) |")
