#!/usr/bin/env python3
"""Test data for spec/reference/crosscheck.sh: texts that carry a profile's
watermark, so that the cross-check sees every verdict.

    crosscheck_data.py PROFILE KEY TOKENIZER OUT.jsonl HUMAN.jsonl

Writes OUT.jsonl with a strongly marked text, a short marked one, a human
text with a marked middle (found only by windowed detection), a text of
one token (too short), a record with a numeric id and one record without
the text field (an error record). The marks are chosen with the keyed
scores of provmark_ref.py over a few printable candidates per position,
each text re-tokenized as detection will see it.
"""
import json
import pathlib
import random
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import provmark_ref as ref  # noqa: E402
from report_ref import Tokenizer, read_key, read_profile  # noqa: E402

ALPHABET = "abcdefghijklmnopqrstuvwxyz ,."


def marked(profile, key, tok, prefix, chars, rng):
    """`prefix` followed by `chars` characters, each the best-scoring of 4
    random candidates under the key (scored on the re-tokenized text)."""
    text = prefix
    h = profile["context"]
    for _ in range(chars):
        cands = rng.sample(ALPHABET, 4)
        best, best_score = None, None
        for c in cands:
            ids = tok.encode(text + c)
            if len(ids) <= h:
                score = 0.0
            else:
                score = ref.token_score(profile, ref.seed(key, profile, ids[-1 - h:-1]), ids[-1])
            if best_score is None or score > best_score:
                best, best_score = c, score
        text += best
    return text


def main():
    profile, key = read_profile(sys.argv[1]), read_key(sys.argv[2])
    tok = Tokenizer(sys.argv[3])
    human = [json.loads(line)["text"] for line in pathlib.Path(sys.argv[5]).read_text().splitlines()]
    rng = random.Random(12)
    rows = [
        {"id": "marked-long", "text": marked(profile, key, tok, "", 300, rng)},
        {"id": "marked-short", "text": marked(profile, key, tok, "", 40, rng)},
        {"id": "mixed", "text": human[0][:300] + marked(profile, key, tok, "", 200, rng) + human[1][:300]},
        {"id": "one-token", "text": "a"},
        {"id": 7, "text": human[2]},
        {"id": "no-text", "body": "this record has no text field"},
    ]
    with open(sys.argv[4], "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
