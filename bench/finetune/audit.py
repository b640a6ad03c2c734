#!/usr/bin/env python3
"""Stage 5: audits of one student GGUF with today's provmark commands.

black-box: the student answers the held-out-family prompts (provmark generate
  --no-watermark --model S.gguf), then `provmark audit corpus` on growing prefixes of its
  answers (log10 p and key-swap p vs suspect tokens, 999 null keys).
reading mode: `provmark audit weights --suspect S.gguf` over (a) lab answers to held-out
  prompts that no student saw and (b) the lab's watermarked answers to the training prompts
  the students were trained on (for the control: the prompts it was trained on, with the
  answers it did not see), optionally with --reference-model (the unmodified base, F32).
Every step writes its JSON under --out and is skipped when that file exists (resumable).
"""
import argparse, json, os, subprocess

def run_json(cmd, out):
    if os.path.exists(out):
        return json.load(open(out))
    print("+", " ".join(cmd), flush=True)
    r = subprocess.run(["nice", "-n", "10"] + cmd, capture_output=True, text=True)
    if r.returncode not in (0, 1):  # audit exit 1 = not attributed, still a result
        raise SystemExit(f"failed ({r.returncode}): {r.stderr[-2000:]}")
    d = json.loads(r.stdout)
    json.dump(d, open(out, "w"), indent=1)
    return d

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--student", required=True, help="the student's GGUF")
    ap.add_argument("--out", required=True)
    ap.add_argument("--exp", default="/work/exp")
    ap.add_argument("--provmark", default="/work/exp/bin/provmark")
    ap.add_argument("--reference-model", help="clean reference for reading mode (e.g. the base, F32)")
    ap.add_argument("--train-examples", type=int, default=104, help="how many train prompts the students saw")
    ap.add_argument("--max-tokens", type=int, default=160)
    ap.add_argument("--skip", default="", help="comma list of: blackbox,reading_a,reading_b")
    a = ap.parse_args()
    E, P = a.exp, a.provmark
    os.makedirs(a.out, exist_ok=True)
    prof = ["--profile", f"{E}/lab.profile.json", "--key", f"{E}/lab.key"]
    skip = set(filter(None, a.skip.split(",")))
    summary = {"student": a.student}
    if "blackbox" not in skip:
        bb = os.path.join(a.out, "blackbox.jsonl")
        subprocess.run(["nice", "-n", "10", P, "generate", "--no-watermark", "--model", a.student, "--threads", "2", "--batch", "16",
                        "--prompts", f"{E}/prompts/heldout_query.jsonl", "--max-tokens", str(a.max_tokens), "--temperature", "1",
                        "--seed", "3", "--out", bb], check=True)
        recs = [l for l in open(bb) if l.strip()]
        toks = [json.loads(l)["completion_tokens"] for l in recs]
        rows, cum = [], 0
        marks = [2000, 4000, 8000]
        for i, t in enumerate(toks):
            cum += t
            if (marks and cum >= marks[0]) or i == len(toks) - 1:
                while marks and cum >= marks[0]:
                    marks.pop(0)
                pre = os.path.join(a.out, f"blackbox_prefix{i+1}.jsonl")
                open(pre, "w").writelines(recs[: i + 1])
                d = run_json([P, "audit", "corpus", *prof, "--json", pre], os.path.join(a.out, f"corpus_prefix{i+1}.json"))
                rows.append({"texts": i + 1, "suspect_tokens": cum, "scored": d["scored"], "log10_p": d["log10_p"],
                             "key_swap_p": d["key_swap"]["p_value"], "verdict": d["verdict"]})
        summary["blackbox"] = rows
    # (b) the lab's answers to the prompts the students were trained on
    seen = os.path.join(E, "teacher", f"marked_train{a.train_examples}.jsonl")
    if not os.path.exists(seen):
        ids = {json.loads(l)["id"] for l in open(os.path.join(E, "prompts", "train200.jsonl")).readlines()[: a.train_examples]}
        lines = [l for l in open(os.path.join(E, "teacher", "marked.jsonl")) if l.strip() and json.loads(l)["id"] in ids]
        assert len(lines) == len(ids), (len(lines), len(ids))
        open(seen, "w").writelines(lines)
    for tag, texts in (("reading_a", os.path.join(E, "teacher", "marked_heldout.jsonl")), ("reading_b", seen)):
        if tag in skip:
            continue
        cmd = [P, "audit", "weights", "--suspect", a.student, "--texts", texts, "--threads", "2", *prof, "--json"]
        if a.reference_model:
            cmd += ["--reference-model", a.reference_model]
        d = run_json(cmd, os.path.join(a.out, f"{tag}.json"))
        summary[tag] = d
    json.dump(summary, open(os.path.join(a.out, "summary.json"), "w"), indent=1)
    print(json.dumps({k: (v if k == "blackbox" else (v.get("log10_p") if isinstance(v, dict) else v)) for k, v in summary.items()}, indent=1))

if __name__ == "__main__":
    main()
