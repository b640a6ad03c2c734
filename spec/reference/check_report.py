#!/usr/bin/env python3
"""Independent check of a provmark evidence report (spec/report.md), from the
spec alone: JSON Schema, RFC 8785 canonical bytes, the digest, the Merkle
root of the inputs, and (given the files) each input's SHA-256.

    python3 spec/reference/check_report.py REPORT [INPUT ...]

Needs the jsonschema package. Exits 0 when everything agrees.
"""

import decimal
import hashlib
import json
import math
import pathlib
import sys


UNDIGESTED = ("digest", "run", "signature")


def es_number(x):
    """ECMAScript Number::toString of a binary64 (RFC 8785 §3.2.2.3)."""
    if isinstance(x, bool):
        raise TypeError("not a number")
    if isinstance(x, int):
        return str(x) if abs(x) <= 2**53 else es_number(float(x))
    if math.isnan(x) or math.isinf(x):
        raise ValueError("JSON has no NaN or infinity")
    if x == 0:
        return "0"
    if x < 0:
        return "-" + es_number(-x)
    _, digits, exp = decimal.Decimal(repr(x)).as_tuple()
    digits = "".join(map(str, digits))
    stripped = digits.rstrip("0") or "0"
    exp += len(digits) - len(stripped)
    k, n = len(stripped), len(stripped) + exp
    if k <= n <= 21:
        return stripped + "0" * (n - k)
    if 0 < n <= 21:
        return stripped[:n] + "." + stripped[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + stripped
    e = n - 1
    mant = stripped[0] + ("." + stripped[1:] if k > 1 else "")
    return mant + "e" + ("+" if e > 0 else "-") + str(abs(e))


def jcs(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, dict):
        keys = sorted(v, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + jcs(v[k]) for k in keys) + "}"
    if isinstance(v, list):
        return "[" + ",".join(jcs(x) for x in v) + "]"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    return es_number(v)


def merkle_root(digests):
    if not digests:
        return hashlib.sha256(b"").hexdigest()
    level = [hashlib.sha256(b"\x00" + d).digest() for d in digests]
    while len(level) > 1:
        nxt = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
               for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0].hex()


def main():
    path, files = sys.argv[1], sys.argv[2:]
    raw = pathlib.Path(path).read_text(encoding="utf-8")
    report = json.loads(raw)
    import jsonschema  # only the schema check needs it; report_ref.py imports this module

    schema = json.loads((pathlib.Path(__file__).parent.parent / "report.schema.json").read_text())
    jsonschema.validate(report, schema)
    problems = []
    # Every report file, signed or not, is exactly its canonical bytes
    # (spec/report.md §1): json.loads keeps the last of two equal members,
    # so a duplicated member shows up here as a difference.
    if raw != jcs(report) + "\n":
        problems.append("the file is not in RFC 8785 canonical form")
    body = {k: v for k, v in report.items() if k not in UNDIGESTED}
    digest = "sha256:" + hashlib.sha256(jcs(body).encode("utf-8")).hexdigest()
    if digest != report["digest"]:
        problems.append(f"digest: recomputed {digest}, recorded {report['digest']}")
    leaves = [bytes.fromhex(i["sha256"]) for i in report["inputs"]]
    if merkle_root(leaves) != report["inputs_merkle_root"]:
        problems.append("inputs_merkle_root does not match the inputs")
    for i, f in enumerate(files):
        d = hashlib.sha256(pathlib.Path(f).read_bytes()).hexdigest()
        if d != report["inputs"][i]["sha256"]:
            problems.append(f"input {i} ({f}): SHA-256 {d} differs")
    if problems:
        print("MISMATCH", *problems, sep="\n  ")
        sys.exit(1)
    print(f"OK {path}: schema, canonical form, {digest}, Merkle root, {len(files)} input(s)")


if __name__ == "__main__":
    main()
