#!/usr/bin/env bash
# Stage 2: teacher answers (watermarked with the lab profile, and unwatermarked) on the
# train prompts, plus watermarked lab answers to held-out prompts (never trained on).
# train200 = the first 200 lines of train.jsonl; heldout_lab = the first 80 of heldout.jsonl
# (written by prompts.py).
# Resumable: provmark generate skips answers already in --out.
set -euo pipefail
EXP=${EXP:-/work/exp}; P=${PROVMARK:-$EXP/bin/provmark}; MT=${MAX_TOKENS:-160}
G="nice -n 10 $P generate --threads 2 --batch 16 --max-tokens $MT --temperature 1 --seed 1"
mkdir -p $EXP/teacher
$G --profile $EXP/lab.profile.json --key $EXP/lab.key --prompts $EXP/prompts/train200.jsonl --out $EXP/teacher/marked.jsonl
$G --no-watermark --prompts $EXP/prompts/train200.jsonl --out $EXP/teacher/plain.jsonl
# lab answers to held-out prompts (reading mode (a)); a different seed
$G --seed 2 --profile $EXP/lab.profile.json --key $EXP/lab.key --prompts $EXP/prompts/heldout_lab.jsonl --out $EXP/teacher/marked_heldout.jsonl
