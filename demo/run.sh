#!/usr/bin/env bash
# provmark end to end: key → profile → watermarked text → detection, with
# unwatermarked controls beside it. Runs on a fresh machine with Rust.
# Until the real-model runtime lands, the text comes from a synthetic
# language model through the real embedding API (bench/src/bin/demo-data.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-demo-out}"
cargo build --release --locked -q -p provmark-cli -p provmark-bench --bins
pm=target/release/provmark
mkdir -p "$out"
rm -f "$out"/lab.key "$out"/lab.profile.json
echo "== 1. the lab makes a key (publish the commitment, keep the key)"
"$pm" keygen --out "$out/lab.key"
echo "== 2. a tokenizer and the watermark profile"
target/release/demo-data tokenizer "$out/tokenizer.json"
"$pm" profile new --scheme kgw --gamma 0.25 --delta 2 --context 2 \
  --tokenizer "$out/tokenizer.json" --key "$out/lab.key" --out "$out/lab.profile.json"
echo "== 3. texts: watermarked, unwatermarked controls from the same model, human text"
target/release/demo-data texts "$out/lab.profile.json" "$out/lab.key" "$out/tokenizer.json" "$out/texts.jsonl" 4
echo "== 4. detection (alpha 1e-6)"
"$pm" detect --profile "$out/lab.profile.json" --key "$out/lab.key" \
  --tokenizer "$out/tokenizer.json" "$out/texts.jsonl"
