#!/usr/bin/env bash
# End-to-end throughput of `provmark detect --json` on answer-sized JSONL
# records (issue #14, bench/RESULTS.md "Text to token ids"): tokenization,
# scoring and output included, at 1 and 2 threads, for one or more provmark
# binaries (e.g. before and after a change), which must print the same
# results byte for byte.
#
# The texts: Python standard-library sources (this machine's python3), files
# in name order cut into records of 1,000-5,000 characters (about 300-1,500
# tokens) until 8 MB. The default model's tokenizer (cached by
# `provmark model fetch`) and a kgw profile made here.
#
# Usage: bench/scripts/detect_throughput.sh OUT_DIR PROVMARK [PROVMARK...]
set -euo pipefail
out="$1"; shift
mkdir -p "$out"
first="$1"
python3 - "$out/texts.jsonl" <<'PY'
import json, os, random, sys, sysconfig
root = sysconfig.get_paths()["stdlib"]
files = sorted(
    os.path.join(d, f)
    for d, _, fs in os.walk(root)
    if "site-packages" not in d and "test" not in d
    for f in fs
    if f.endswith(".py")
)
rng = random.Random(14)
total, n = 0, 0
with open(sys.argv[1], "w", encoding="utf-8") as w:
    for path in files:
        try:
            text = open(path, encoding="utf-8").read()
        except (UnicodeDecodeError, OSError):
            continue
        at = 0
        while at < len(text) and total < 8_000_000:
            size = rng.randint(1000, 5000)
            chunk = text[at : at + size]
            at += size
            w.write(json.dumps({"id": n, "text": chunk}) + "\n")
            total += len(chunk.encode("utf-8"))
            n += 1
        if total >= 8_000_000:
            break
print(f"{n} records, {total} bytes of text from {root}", file=sys.stderr)
PY
if [ ! -f "$out/lab.key" ]; then
  "$first" keygen --out "$out/lab.key"
  "$first" profile new --scheme kgw --gamma 0.25 --delta 2 --context 2 \
    --key "$out/lab.key" --out "$out/lab.profile.json"
fi
uptime
i=0
for pm in "$@"; do
  i=$((i + 1))
  for threads in 1 2; do
    res="$out/result-$i-$threads.jsonl"
    start=$(date +%s.%N)
    "$pm" detect --profile "$out/lab.profile.json" --key "$out/lab.key" --json \
      --threads "$threads" "$out/texts.jsonl" > "$res" 2> "$out/stderr-$i-$threads.txt" || true
    end=$(date +%s.%N)
    python3 - "$res" "$start" "$end" "$pm" "$threads" <<'PY'
import json, sys
res, start, end, pm, threads = sys.argv[1:]
tokens = sum(json.loads(l).get("tokens", 0) for l in open(res))
secs = float(end) - float(start)
print(f"{pm} threads={threads}: {tokens} tokens in {secs:.2f} s = {tokens / secs / 1e6:.3f} M tokens/s")
PY
    if [ "$i" -gt 1 ]; then
      cmp -s "$out/result-1-$threads.jsonl" "$res" && echo "  same results as $first" \
        || echo "  RESULTS DIFFER from $first"
    fi
  done
done
