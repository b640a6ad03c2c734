#!/usr/bin/env python3
"""Change one member of a report and digest it again, for the tests where
two implementations must disagree (spec/reference/crosscheck.sh).

    mutate_report.py REPORT OUT PATH OP

PATH is a JSON path as verifiers print it (`results.texts[2].p_value`);
OP is `+N` (add N), `*F` (multiply by F) or `=WORD` (set a string). The
`digest` is recomputed (spec/report.md §2) so that a verifier finds the
change in the recomputation (§4 step 5), not in the digest; a signature,
if any, is dropped.
"""
import json
import re
import sys
import pathlib

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from report_ref import digest_of, jcs  # noqa: E402


def main():
    src, out, path, op = sys.argv[1:5]
    report = json.loads(pathlib.Path(src).read_text(encoding="utf-8"))
    steps = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    parent = report
    for s in steps[:-1]:
        parent = parent[int(s[1:-1])] if s.startswith("[") else parent[s]
    last = steps[-1]
    key = int(last[1:-1]) if last.startswith("[") else last
    old = parent[key]
    if op.startswith("+"):
        new = old + (int(op[1:]) if isinstance(old, int) else float(op[1:]))
    elif op.startswith("*"):
        new = old * float(op[1:])
    elif op.startswith("="):
        new = op[1:]
    else:
        sys.exit(f"mutate_report.py: unknown operation {op!r}")
    if new == old:
        sys.exit(f"mutate_report.py: {path} = {old!r} is unchanged by {op}")
    parent[key] = new
    report.pop("signature", None)
    report["digest"] = digest_of(report)
    pathlib.Path(out).write_text(jcs(report) + "\n", encoding="utf-8")
    print(f"{path}: {old!r} -> {new!r}")


if __name__ == "__main__":
    main()
