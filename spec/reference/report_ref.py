#!/usr/bin/env python3
"""Independent writer and checker of provmark evidence reports
(`provmark-report/1`), from spec/SPEC.md and spec/report.md alone.

It WRITES the report of `detect` and `audit corpus` (spec/report.md §7) and
it CHECKS a report written by anyone (provmark or this script): the
canonical bytes, digest, key commitments, profile digests and input files
(report.md §4 steps 0-4), then recomputes every member from the report's
typed content and compares under the verification rule of report.md §4
step 5 (counts exactly, real-valued members within the stated tolerance).

    report_ref.py detect --profile P --key K [--profile P2 --key K2 ...]
        --tokenizer tokenizer.json [--windows] [--window-min N] [--alpha A]
        [--field F] [--jsonl] [--max-record-bytes N] [--force-tokenizer]
        [--normalize invisible]
        --report OUT INPUT...
    report_ref.py audit corpus --profile P --key K --tokenizer tokenizer.json
        [--filter-from F ...] [--reference R ...] [--null-keys M]
        [--null-seed S] [--alpha A] [--field F] [--normalize invisible]
        --report OUT INPUT...
    report_ref.py verify REPORT --key K... --inputs F...

`verify` prints MATCH or MISMATCH and each difference by JSON path, and
exits 0 (MATCH), 1 (MISMATCH) or 2 (bad usage or input, or a report this
script cannot recompute: GGUF `model` inputs, `audit weights`). It
recomputes `detect`, `audit corpus`, `audit api` (the corpus audit of its
kept answers; `collection` is taken as recorded) and `audit merge` (from
the bound corpus files: disjoint shards of exact statistics add up to the
whole audit).

Needs Python 3.9+, mpmath==1.3.0 and the Hugging Face tokenizers package
at the version provmark links (tokenizers==0.23.2). The scheduling and
statistics (seeds, keystream, scores, exact tails) are those of
provmark_ref.py, imported, not rewritten.
"""

import argparse
import decimal
import hashlib
import json
import re
import math
import os
import pathlib
import platform
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import provmark_ref as ref  # noqa: E402
from check_report import es_number, jcs, merkle_root  # noqa: E402  (RFC 8785, report.md §1, §3)

import mpmath  # noqa: E402

FORMAT = "provmark-report/1"
TOOL = {"name": "provmark-ref", "version": "report_ref/1", "commit": "unknown"}
DEFAULT_MAX_RECORD_BYTES = 4 << 20   # report.md §7.1: the audits' fixed limit
DEFAULT_WINDOW_MIN = 32
MAX_CORPUS_CONTEXT = 3
TOKENIZERS_VERSION = "0.23.2"  # the tokenizers crate of Cargo.lock
UNDIGESTED = ("digest", "run", "signature")
NOT_COMPARED = ("digest", "run", "signature", "tool", "collection")


class Usage(Exception):
    """Bad usage or input: exit status 2."""


# --- RFC 8785 canonical JSON (report.md §1) --------------------------------
def digest_of(report):
    body = {k: v for k, v in report.items() if k not in UNDIGESTED}
    return "sha256:" + hashlib.sha256(jcs(body).encode("utf-8")).hexdigest()


def decimal_arg(x):
    """A number as it appears in `command.replay` (report.md §7.1): the
    shortest round-trip digits of the binary64, in plain decimal notation
    with no exponent (1e-06 is "0.000001"; 2.0 is "2")."""
    if isinstance(x, int):
        return str(x)
    s = format(decimal.Decimal(repr(float(x))), "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


# --- Keys, profiles, tokenizers (SPEC §2, §3, §5) ---------------------------
def read_key(path):
    raw = pathlib.Path(path).read_bytes()
    text = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1] if raw.endswith(b"\n") else raw
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise Usage(f"{path}: not a key file (64 hexadecimal characters)") from None
    if len(text) != 64 or len(key) != 32:
        raise Usage(f"{path}: not a key file (64 hexadecimal characters)")
    return key


def profile_digest(profile):
    return "sha256:" + hashlib.sha256(jcs(profile).encode("utf-8")).hexdigest()


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _integer(v, lo, hi, where, member):
    """SPEC §3: an integer member is any number whose value is an integer."""
    if not _number(v) or v != int(v) or not lo <= int(v) <= hi:
        raise Usage(f"{where}: {member} must be an integer in [{lo}, {hi}]")
    return int(v)


def check_profile(profile, where):
    """SPEC §3: exactly these members, each of its type and range."""
    members = {"spec", "scheme", "params", "context", "tokenizer", "key_id"}
    if not isinstance(profile, dict) or set(profile) != members:
        raise Usage(f"{where}: a profile has exactly the members {sorted(members)}")
    if profile["spec"] != ref.SPEC or profile["scheme"] not in ("kgw", "gumbel", "synthid"):
        raise Usage(f"{where}: unknown spec or scheme")
    profile = dict(profile)
    profile["context"] = _integer(profile["context"], 0, 16, where, "context")
    params = profile["params"]
    if not isinstance(params, dict):
        raise Usage(f"{where}: params must be an object")
    scheme = profile["scheme"]
    if scheme == "kgw":
        if set(params) != {"gamma", "delta"} or not all(_number(params[m]) for m in params):
            raise Usage(f"{where}: kgw params are the numbers gamma and delta")
        g, d = params["gamma"], params["delta"]
        if not (0 < g < 1 and math.ceil(g * 2**16) < 2**16 and 0 < d <= 100):
            raise Usage(f"{where}: params.gamma or params.delta out of range")
    elif scheme == "synthid":
        if set(params) != {"layers"}:
            raise Usage(f"{where}: synthid params are {{layers}}")
        profile["params"] = {"layers": _integer(params["layers"], 1, 32, where, "params.layers")}
    elif params != {}:
        raise Usage(f"{where}: gumbel params must be {{}}")
    tok, kid = profile["tokenizer"], profile["key_id"]
    if not (isinstance(tok, str) and re.fullmatch(r"sha256:[0-9a-f]{64}", tok)):
        raise Usage(f"{where}: tokenizer must be sha256: and 64 lowercase hex digits")
    if not (isinstance(kid, str) and re.fullmatch(r"[0-9a-f]{16}", kid)):
        raise Usage(f"{where}: key_id must be 16 lowercase hex digits")
    return profile


def _no_duplicates(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise Usage(f"member {k!r} given twice")
        seen[k] = v
    return seen


def read_profile(path):
    try:
        text = pathlib.Path(path).read_bytes().decode("utf-8")
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as e:
        raise Usage(f"{path}: not a JSON profile: {e}") from None
    except Usage as e:
        raise Usage(f"{path}: {e}") from None
    return check_profile(value, path)


class Tokenizer:
    """A tokenizer.json file: its exact bytes are hashed (SPEC §3) and
    texts are encoded without special tokens (SPEC §5)."""

    def __init__(self, path):
        import tokenizers
        if tokenizers.__version__ != TOKENIZERS_VERSION:
            print(f"report_ref.py: warning: tokenizers {tokenizers.__version__}, not the "
                  f"{TOKENIZERS_VERSION} provmark links; token ids may differ", file=sys.stderr)
        data = pathlib.Path(path).read_bytes()
        self.digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.inner = tokenizers.Tokenizer.from_str(data.decode("utf-8"))

    def encode(self, text):
        return self.inner.encode(text, add_special_tokens=False).ids


# --- Records (report.md §7.2) ----------------------------------------------
ASCII_WS = b" \t\n\r\x0c"


def record_id_of(value, here):
    v = value.get("id")
    if isinstance(v, str):
        return v
    if isinstance(v, bool) or v is None:
        return here
    # SPEC §5: a 64-bit integer in decimal, any other number (as binary64)
    # in its RFC 8785 form.
    if isinstance(v, int) and -2**63 <= v < 2**64:
        return str(v)
    if isinstance(v, (int, float)):
        return es_number(float(v))
    return here


def _finite_int(text):
    """An integer literal outside binary64's range is out of range too."""
    v = int(text)
    if not -2**63 <= v < 2**64:
        _finite_float(text)
    return v


def _finite_float(text):
    """A JSON number beyond binary64's range makes its line malformed (SPEC §5)."""
    x = float(text)
    if not math.isfinite(x):
        raise ValueError(f"number out of range: {text}")
    return x


def records(name, path, jsonl, field, max_bytes):
    """The records of one input, as (id, text or None, error or None)."""
    data = pathlib.Path(path).read_bytes()
    if not jsonl:
        if len(data) > max_bytes:
            yield name, None, f"{name}: larger than the {max_bytes} byte limit (--max-record-bytes)"
            return
        # SPEC §5: one leading byte order mark is the encoding's signature,
        # not text (the size limit counts it; error offsets are in the file).
        bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
        try:
            yield name, data[bom:].decode("utf-8"), None
        except UnicodeDecodeError as e:
            yield name, None, f"{name}: not valid UTF-8 (first bad byte at offset {bom + e.start})"
        return
    pos, line_no = 0, 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end + 1
        line, pos = data[pos:end], end
        line_no += 1
        here = f"{name}:{line_no}"
        if b"\0" in line:
            at = pos - len(line) + line.index(b"\0")
            yield here, None, f"{here}: binary file: NUL byte at byte offset {at}; not read further"
            return
        if len(line) > max_bytes + 1:
            yield here, None, f"{here}: line longer than the {max_bytes} byte limit (--max-record-bytes)"
            continue
        if line_no == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        if all(b in ASCII_WS for b in line):
            continue
        try:
            value = json.loads(line.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite_float,
                               parse_int=_finite_int)
            if _has_surrogate(value):
                raise ValueError("lone surrogate in a string (not a Unicode scalar value)")
        except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as e:
            msg = f"{here}: malformed JSON: {e}"
            if line.startswith(b"\xef\xbb\xbf"):
                msg += " (the line starts with a UTF-8 byte order mark, allowed only at the start of the file)"
            yield here, None, msg
            continue
        if not isinstance(value, dict):
            yield here, None, f"{here}: expected a JSON object"
            continue
        rid = record_id_of(value, here)
        text = value.get(field)
        if field not in value:
            yield rid, None, f"{here}: field {json.dumps(field)} is missing"
        elif not isinstance(text, str):
            yield rid, None, f"{here}: field {json.dumps(field)} must be a string"
        else:
            yield rid, text, None


def _has_surrogate(v):
    """JSON escapes such as \\ud800 give strings that are not Unicode text;
    such a line is malformed (report.md §7.2)."""
    if isinstance(v, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in v)
    if isinstance(v, dict):
        return any(_has_surrogate(k) or _has_surrogate(x) for k, x in v.items())
    if isinstance(v, list):
        return any(_has_surrogate(x) for x in v)
    return False


def _no_constant(c):
    raise ValueError(f"{c} is not JSON")


def is_jsonl(name, forced):
    return forced or name.endswith(".jsonl") or name.endswith(".ndjson")


# --- Scores, exact tests (SPEC §5, §7, §8) ----------------------------------
class Scorer:
    """One profile under one key: per-position scores of SPEC §7, with the
    seed of each window computed once (ref.seed / ref.token_score)."""

    def __init__(self, profile, key):
        self.profile, self.key, self.h = profile, key, profile["context"]
        self._seeds = {}

    def score(self, window, token):
        w = tuple(window)
        s = self._seeds.get(w)
        if s is None:
            s = self._seeds[w] = ref.seed(self.key, self.profile, list(w))
        return ref.token_score(self.profile, s, token)


def exact_test(profile, n, stat):
    """(p as an mpmath number, z) of SPEC §8 for n ≥ 1 scored positions."""
    s = profile["scheme"]
    if s == "kgw":
        g = mpmath.mpf(ref.kgw_threshold(profile["params"]["gamma"])) / 2**16
        return ref.binom_tail(int(stat), n, g), (stat - n * g) / mpmath.sqrt(n * g * (1 - g))
    if s == "synthid":
        trials = n * profile["params"]["layers"]
        return (ref.binom_tail(int(stat), trials, mpmath.mpf(1) / 2),
                (stat - mpmath.mpf(trials) / 2) / mpmath.sqrt(mpmath.mpf(trials) / 4))
    return ref.gamma_tail(n, stat), (mpmath.mpf(stat) - n) / mpmath.sqrt(n)


def p_float(p):
    """The binary64 nearest p (0 only below 2^-1075)."""
    return float(p)


def log10_float(p):
    return 0.0 if p >= 1 else float(mpmath.log10(p))


def cap(p):
    return p if p < 1 else mpmath.mpf(1)


def score_text(scorer, ids):
    """SPEC §5: positions, scores and duplicates of one text."""
    h, seen, positions, scores, dups = scorer.h, set(), [], [], 0
    for i in range(h, len(ids)):
        tup = tuple(ids[i - h:i + 1])
        if tup in seen:
            dups += 1
            continue
        seen.add(tup)
        positions.append(i)
        scores.append(scorer.score(ids[i - h:i], ids[i]))
    return positions, scores, dups


def best_window(profile, positions, scores, min_len):
    """SPEC §9 and report.md §7.3: the window of smallest exact p (the first
    in enumeration order on a tie), or None when n ≤ min_len."""
    n = len(scores)
    if min_len < 2 or n <= min_len:
        return None
    prefix = [0.0]
    for s in scores:
        prefix.append(prefix[-1] + s)
    best, count, length = None, 0, min_len
    tests = {}

    def consider(start):
        nonlocal best, count
        count += 1
        stat = prefix[start + length] - prefix[start]
        if (length, stat) not in tests:
            tests[(length, stat)] = exact_test(profile, length, stat)[0]
        p = tests[(length, stat)]
        if best is None or p < best[0]:
            best = (p, start, length, stat)

    while length < n:
        stride, start = length // 2, 0
        while start + length <= n:
            consider(start)
            start += stride
        if start - stride + length < n:
            consider(n - length)
        length *= 2
    p_raw, start, length, stat = best
    return {"p_raw": p_raw, "p": cap(p_raw * count), "windows": count,
            "first_token": positions[start], "last_token": positions[start + length - 1],
            "scored": length, "statistic": stat}


def holm(ps):
    """SPEC §10 over the tested p-values (None: untested, not counted)."""
    tested = sorted((p, i) for i, p in enumerate(ps) if p is not None)
    k, running, out = len(tested), mpmath.mpf(0), [None] * len(ps)
    for rank, (p, i) in enumerate(tested):
        running = max(running, cap((k - rank) * p))
        out[i] = running
    return out


def verdict(p, alpha):
    return "too_short" if p is None else "watermarked" if p <= mpmath.mpf(alpha) else "not_detected"


# --- detect (report.md §7.3) ------------------------------------------------
def detection_members(profile, o):
    d = {"tokens": o["tokens"], "scored": o["scored"], "duplicates": o["duplicates"],
         "statistic": o["statistic"], "p_value": None, "log10_p": None, "z": None}
    if o["p"] is not None:
        d.update(p_value=p_float(o["p"]), log10_p=log10_float(o["p"]), z=float(o["z"]))
    w = o.get("window")
    if w is not None:
        d["window"] = {"first_token": w["first_token"], "last_token": w["last_token"],
                       "scored": w["scored"], "statistic": w["statistic"],
                       "windows_tested": w["windows"], "log10_p_raw": log10_float(w["p_raw"]),
                       "log10_p": log10_float(w["p"]), "correction": "bonferroni"}
        d["decision_log10_p"] = None if o["decision"] is None else log10_float(o["decision"])
    return d


def detect_text(targets, toks, text, params):
    ids_by_tok = {}
    outcomes = []
    for profile, scorer, t in targets:
        if t not in ids_by_tok:
            ids_by_tok[t] = toks[t].encode(text)
        ids = ids_by_tok[t]
        positions, scores, dups = score_text(scorer, ids)
        stat = sum_in_order(scores)
        o = {"tokens": len(ids), "scored": len(scores), "duplicates": dups, "statistic": stat,
             "p": None, "z": None, "decision": None}
        if scores:
            o["p"], o["z"] = exact_test(profile, len(scores), stat)
        if params["windows"]:
            o["window"] = best_window(profile, positions, scores, params["window_min"])
        if o["p"] is not None:
            w = o.get("window")
            o["decision"] = o["p"] if w is None else cap(2 * min(o["p"], w["p"]))
        outcomes.append(o)
    return outcomes


def sum_in_order(xs):
    s = 0.0
    for x in xs:
        s += x
    return s


def run_detect(params, keyed, tokenizer_files, inputs):
    """keyed: [(profile, key)]; tokenizer_files, inputs: [(name, path)]."""
    alpha = params["alpha"]
    if not 0 < alpha < 1:
        raise Usage("--alpha must lie strictly between 0 and 1")
    if params["windows"] and params["window_min"] < 2:
        raise Usage("--window-min must be at least 2")
    if not tokenizer_files:
        raise Usage("give --tokenizer tokenizer.json (GGUF models and the default model are out of scope)")
    toks = [Tokenizer(p) for _, p in tokenizer_files]
    targets = []
    for i, (profile, key) in enumerate(keyed):
        if ref.key_id(key) != profile["key_id"]:
            raise Usage(f"key {i} is not the key of profile {i}")
        t = next((j for j, tk in enumerate(toks) if tk.digest == profile["tokenizer"]), None)
        if t is None:
            if not params["force_tokenizer"]:
                raise Usage(f"no tokenizer matches profile {i} ({profile['tokenizer']})")
            t = 0
        targets.append((profile, Scorer(profile, key), t))
    multi = len(targets) > 1
    texts, counts = [], {"watermarked": 0, "not_detected": 0, "too_short": 0, "errors": 0}
    edited = 0
    for name, path in inputs:
        for rid, text, error in records(name, path, is_jsonl(name, params["jsonl"]),
                                        params["field"], params["max_record_bytes"]):
            if error is not None:
                texts.append({"id": rid, "verdict": "error", "error": error})
                counts["errors"] += 1
                continue
            text, edits = ref.normalize(params.get("normalize"), text)
            outcomes = detect_text(targets, toks, text, params)
            adjusted = holm([o["decision"] for o in outcomes])
            tested = [a for a in adjusted if a is not None]
            family = verdict(min(tested) if tested else None, alpha)
            obj = {"id": rid}
            if "normalize" in params:
                obj["invisible_edits"] = edits
                edited += edits > 0
            if not multi:
                profile = targets[0][0]
                obj.update(detection_members(profile, outcomes[0]))
                obj.update(scheme=profile["scheme"], key_id=profile["key_id"])
            else:
                rows = []
                for (profile, _, _), o, a in zip(targets, outcomes, adjusted):
                    r = {"key_id": profile["key_id"], "profile": profile_digest(profile),
                         "scheme": profile["scheme"]}
                    r.update(detection_members(profile, o))
                    r["log10_p_holm"] = None if a is None else log10_float(a)
                    r["verdict"] = verdict(a, alpha)
                    rows.append(r)
                obj.update(correction="holm", results=rows)
            obj.update(alpha=alpha, verdict=family)
            counts[family] += 1
            texts.append(obj)
    decision = {"alpha": alpha, "correction": "holm" if multi else "none"}
    decision.update(counts)
    if "normalize" in params:
        decision.update(normalize=params["normalize"], texts_with_invisible_edits=edited)
    return {"texts": texts}, decision, [t.digest for t in dedup(toks)]


def dedup(toks):
    seen, out = set(), []
    for t in toks:
        if t.digest not in seen:
            seen.add(t.digest)
            out.append(t)
    return out


# --- audit corpus (report.md §7.4) ------------------------------------------
def corpus_ids(files, field, tok, strict, normalize=None):
    """Token ids of every readable text of `files` (normalised first, SPEC
    §5.1), and the unreadable count."""
    out, errors = [], 0
    for name, path in files:
        for _, text, error in records(name, path, is_jsonl(name, False), field,
                                      DEFAULT_MAX_RECORD_BYTES):
            if error is not None:
                errors += 1
                continue
            out.append(tok.encode(ref.normalize(normalize, text)[0]))
    if strict and errors:
        raise Usage(f"{errors} text(s) of --filter-from cannot be read: the filter would be incomplete")
    return out, errors


def corpus_totals(profile, key, texts, errors, filt, null_keys, null_seed):
    h = profile["context"]
    tuples, positions = set(), 0
    for ids in texts:
        for i in range(h, len(ids)):
            positions += 1
            tuples.add(tuple(ids[i - h:i + 1]))
    distinct = len(tuples)
    if filt is not None:
        tuples = {t for t in tuples if t[:h] in filt}
    kept = sorted(tuples)

    def statistic(k, prof):
        sc = Scorer(prof, k)
        return sum_in_order([sc.score(t[:h], t[h]) for t in kept])

    stat = statistic(key, profile)
    nulls = []
    for i in range(null_keys):
        nk = ref.null_key(null_seed, i)
        nulls.append(statistic(nk, dict(profile, key_id=ref.key_id(nk))))
    return {"texts": len(texts), "unreadable": errors, "positions": positions,
            "distinct_tuples": distinct, "filter_windows": None if filt is None else len(filt),
            "filtered_out": distinct - len(kept), "scored": len(kept), "statistic": stat,
            "null_statistics": nulls, "null_seed": null_seed}


def judge(profile, t, alpha):
    p, z = exact_test(profile, t["scored"], t["statistic"]) if t["scored"] else (None, None)
    at_least = sum(1 for s in t["null_statistics"] if s >= t["statistic"])
    keys = len(t["null_statistics"])
    swap_p = (1 + at_least) / (keys + 1)
    attributed = p is not None and p <= mpmath.mpf(alpha) and swap_p <= alpha
    obj = {k: t[k] for k in ("texts", "unreadable", "positions", "distinct_tuples", "filter_windows",
                             "filtered_out", "scored", "statistic")}
    obj.update(log10_p=None if p is None else log10_float(p), p_value=None if p is None else p_float(p),
               z=None if p is None else float(z),
               key_swap={"keys": keys, "seed": t["null_seed"], "at_least": at_least, "p_value": swap_p,
                         "statistics": t["null_statistics"]},
               attributed=attributed)
    return obj, p is not None


def run_corpus(params, profile, key, tokenizer_file, filters, references, inputs):
    alpha, m = params["alpha"], params["null_keys"]
    if not 0 < alpha < 1:
        raise Usage("--alpha must lie strictly between 0 and 1")
    if 1 / (m + 1) > alpha:
        raise Usage(f"with {m} null keys the key-swap p-value cannot reach --alpha {alpha}")
    if tokenizer_file is None:
        raise Usage("give --tokenizer tokenizer.json (GGUF models and the default model are out of scope)")
    if ref.key_id(key) != profile["key_id"]:
        raise Usage("the key is not the profile's")
    h = profile["context"]
    if h > MAX_CORPUS_CONTEXT:
        raise Usage(f"a corpus audit supports context width at most {MAX_CORPUS_CONTEXT}")
    tok = Tokenizer(tokenizer_file[1])
    if tok.digest != profile["tokenizer"]:
        raise Usage("the tokenizer is not the profile's")
    field, norm = params["field"], params.get("normalize")
    filt = None
    if filters:
        ftexts, _ = corpus_ids(filters, field, tok, strict=True, normalize=norm)
        filt = {tuple(ids[i - h:i]) for ids in ftexts for i in range(h, len(ids))}
    texts, errs = corpus_ids(inputs, field, tok, strict=False, normalize=norm)
    suspect, tested = judge(profile, corpus_totals(profile, key, texts, errs, filt, m,
                                                   params["null_seed"]), alpha)
    reference = None
    if references:
        rtexts, rerrs = corpus_ids(references, field, tok, strict=False, normalize=norm)
        reference, _ = judge(profile, corpus_totals(profile, key, rtexts, rerrs, filt, m,
                                                    params["null_seed"]), alpha)
    if not tested:
        word = "too_short"
    elif suspect["attributed"]:
        word = "inconclusive" if reference is not None and reference["attributed"] else "attributed"
    else:
        word = "not_attributed"
    results = dict(suspect)
    del results["attributed"]
    if reference is not None:
        results["reference"] = reference
    results.update(alpha=alpha, verdict=word, profile_digest=profile_digest(profile),
                   key_id=profile["key_id"])
    return results, {"verdict": word, "alpha": alpha, "correction": "none"}, [profile["tokenizer"]]


# --- Report assembly (report.md §2, §7) -------------------------------------
def file_entry(index, role, name, path):
    data = pathlib.Path(path).read_bytes()
    return {"index": index, "role": role, "name": name,
            "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def profile_entry(profile, key):
    return {"profile": profile, "digest": profile_digest(profile), "key_id": ref.key_id(key),
            "key_commitment": ref.commitment(key)}


def assemble(command, params, replay_params, keyed, files, results, decision, tokenizers):
    """files: [(flag or None, role, name, path)] in `inputs` order."""
    replay = command.split(" ")
    for name, value in replay_params:
        if isinstance(value, bool):
            if value:
                replay.append("--" + name)
        else:
            replay += ["--" + name, value if isinstance(value, str) else decimal_arg(value)]
    for i in range(len(keyed)):
        replay += ["--profile", f"@profile:{i}", "--key", f"@key:{i}"]
    inputs = []
    for i, (flag, role, name, path) in enumerate(files):
        if flag:
            replay.append("--" + flag)
        replay.append(f"@input:{i}")
        inputs.append(file_entry(i, role, name, path))
    report = {
        "format": FORMAT, "spec": ref.SPEC, "tool": TOOL,
        "command": {"name": command, "replay": replay},
        "parameters": params,
        "profiles": [profile_entry(p, k) for p, k in keyed],
        "tokenizers": tokenizers,
        "inputs": inputs,
        "inputs_merkle_root": merkle_root([bytes.fromhex(e["sha256"]) for e in inputs]),
        "results": results, "decision": decision,
    }
    return report


def finish(report, started):
    report["run"] = {"argv": sys.argv, "seconds": time.time() - started,
                     "finished_unix": int(time.time()),
                     "host": {"os": sys.platform, "arch": platform.machine(), "threads": 1}}
    report["digest"] = digest_of(report)
    return report


def detect_report(params, keyed, tokenizer_files, inputs):
    results, decision, tokenizers = run_detect(params, keyed, tokenizer_files, inputs)
    replay = [("alpha", params["alpha"]), ("field", params["field"]),
              ("max-record-bytes", params["max_record_bytes"]), ("window-min", params["window_min"]),
              ("jsonl", params["jsonl"]), ("windows", params["windows"]),
              ("force-tokenizer", params["force_tokenizer"])]
    if "normalize" in params:
        replay.append(("normalize", params["normalize"]))
    files = [("tokenizer", "tokenizer", n, p) for n, p in tokenizer_files]
    files += [(None, "input", n, p) for n, p in inputs]
    return assemble("detect", params, replay, keyed, files, results, decision, tokenizers)


def corpus_report(params, profile, key, tokenizer_file, filters, references, inputs):
    results, decision, tokenizers = run_corpus(params, profile, key, tokenizer_file, filters,
                                               references, inputs)
    replay = [("alpha", params["alpha"]), ("null-keys", params["null_keys"]),
              ("null-seed", params["null_seed"]), ("field", params["field"])]
    if "normalize" in params:
        replay.append(("normalize", params["normalize"]))
    files = [("tokenizer", "tokenizer", *tokenizer_file)]
    files += [("filter-from", "filter", n, p) for n, p in filters]
    files += [("reference", "reference", n, p) for n, p in references]
    files += [(None, "input", n, p) for n, p in inputs]
    return assemble("audit corpus", params, replay, [(profile, key)], files, results, decision,
                    tokenizers)


def write_report(path, report):
    pathlib.Path(path).write_text(jcs(report) + "\n", encoding="utf-8")


# --- Comparison under report.md §4 step 5 -----------------------------------
LOG_MEMBERS = {"log10_p", "log10_p_raw", "log10_p_holm", "decision_log10_p"}
TINY = 2.0 ** -1074


def close_relative(a, b):
    return abs(a - b) <= 1e-11 * max(1.0, abs(a), abs(b))


def close_p(a, b):
    m = max(a, b)
    if m == 0:
        return a == b
    return abs(a - b) <= 1e-10 * max(1.0, abs(math.log10(m))) * m + TINY


def rule_of(path, key, parent):
    """Which rule compares the number at `path` (report.md §4 step 5)."""
    in_swap = path.endswith(f"key_swap.{key}") or ".key_swap.statistics[" in path \
        or path.startswith("key_swap.statistics[")
    expected = isinstance(parent, dict) and "variance" in parent
    if key in LOG_MEMBERS:
        return "log"
    if key == "p_value" and not path.endswith("key_swap.p_value"):
        return "p"
    if key == "z":
        return "rel"
    if expected and key in ("statistic", "variance", "inheritance"):
        return "rel"
    if in_swap and key == "statistics[]" and expected:
        return "rel"
    return "exact"


def compare(a, b, path="", out=None, parent=None, key=None, swap_parent=None):
    """Differences between recorded a and recomputed b, by JSON path."""
    if out is None:
        out = []
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            p = f"{path}.{k}" if path else k
            if k not in a or k not in b:
                out.append((p, a.get(k, "<absent>"), b.get(k, "<absent>")))
            else:
                compare(a[k], b[k], p, out, a, k, a if k == "key_swap" else swap_parent)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            # key_swap.statistics[i] of an expected-score test: the test
            # object (the key_swap's parent) has a `variance` member.
            elem_key = "statistics[]" if key == "statistics" else key
            owner = swap_parent if key == "statistics" else parent
            compare(x, y, f"{path}[{i}]", out, owner, elem_key, swap_parent)
        return out
    num = (int, float)
    if isinstance(a, num) and isinstance(b, num) and not isinstance(a, bool) and not isinstance(b, bool):
        rule = rule_of(path, key, parent)
        fa, fb = float(a), float(b)
        ok = (fa == fb if rule == "exact" else close_p(fa, fb) if rule == "p"
              else close_relative(fa, fb))
        if not ok:
            out.append((path, a, b))
        return out
    if type(a) is not type(b) or a != b:
        out.append((path, a, b))
    return out


# --- verify ------------------------------------------------------------------
MAX_NULL_KEYS = 10_000_000


def check_parameters(params):
    """The recorded settings have their types and ranges (report.md §7.1)
    before anything is computed from them."""
    for name, v in params.items():
        if name == "alpha" and not (_number(v) and 0 < v < 1):
            raise Usage("parameters.alpha must be a number in (0, 1)")
        if name == "null_keys":
            _integer(v, 1, MAX_NULL_KEYS, "parameters", "null_keys")
        if name in ("null_seed", "max_record_bytes", "window_min", "shards"):
            _integer(v, 0, 2**53, "parameters", name)
        if name in ("jsonl", "windows", "force_tokenizer") and not isinstance(v, bool):
            raise Usage(f"parameters.{name} must be a boolean")
        if name == "field" and not isinstance(v, str):
            raise Usage("parameters.field must be a string")
        if name == "normalize" and v not in ("none", "invisible"):
            raise Usage("parameters.normalize must be \"none\" or \"invisible\" (SPEC §5.1)")


def recompute(report, keys, files):
    """The report this implementation writes from `report`'s typed content,
    the given keys (keyed profiles in order) and files (inputs in order)."""
    name = report.get("command", {}).get("name")
    params = dict(report.get("parameters", {}))
    inputs = report.get("inputs", [])
    named = [(e["role"], e["name"], f) for e, f in zip(inputs, files)]

    def role(r):
        return [(n, f) for rr, n, f in named if rr == r]
    if any(r == "model" for r, _, _ in named):
        raise Usage("a report made with a GGUF model's tokenizer is out of this script's scope")
    check_parameters(params)
    keyed = [(check_profile(e["profile"], f"profile {i}"), k)
             for i, (e, k) in enumerate(zip(report["profiles"], keys))]
    if name == "detect":
        want = {"alpha", "field", "max_record_bytes", "window_min", "jsonl", "windows", "force_tokenizer"}
        if set(params) - {"normalize"} != want or any(r not in ("tokenizer", "input") for r, _, _ in named):
            raise Usage("detect: unexpected parameters or input roles")
        return detect_report(params, keyed, role("tokenizer"), role("input"))
    if name == "audit corpus":
        want = {"alpha", "null_keys", "null_seed", "field"}
        if set(params) - {"normalize"} != want or any(
                r not in ("tokenizer", "filter", "reference", "input") for r, _, _ in named):
            raise Usage("audit corpus: unexpected parameters or input roles")
        tok = role("tokenizer")
        if len(tok) != 1 or len(keyed) != 1:
            raise Usage("audit corpus: one tokenizer.json and one keyed profile expected")
        return corpus_report(params, keyed[0][0], keyed[0][1], tok[0], role("filter"),
                             role("reference"), role("input"))
    if name == "audit api":
        # report.md §7.5: the corpus audit of the kept answers, renamed.
        want = {"alpha", "null_keys", "null_seed", "field"}
        if set(params) - {"normalize"} != want or any(
                r not in ("tokenizer", "filter", "reference", "input") for r, _, _ in named):
            raise Usage("audit api: unexpected parameters or input roles")
        tok = role("tokenizer")
        if len(tok) != 1 or len(keyed) != 1:
            raise Usage("audit api: one tokenizer.json and one keyed profile expected")
        mine = corpus_report(params, keyed[0][0], keyed[0][1], tok[0], role("filter"),
                             role("reference"), role("input"))
        mine["command"]["name"] = "audit api"
        return mine
    if name == "audit merge":
        return merge_report(params, keyed, named, inputs)
    raise Usage(f"{name!r}: this script recomputes detect, audit corpus, audit api and audit merge")


def merge_report(params, keyed, named, recorded):
    """report.md §6, §7.5: the shards of a corpus audit add up exactly to
    the whole audit (disjoint shards, exact statistics), so the merged
    numbers are those of the corpus audit of the bound files."""
    want = {"alpha", "shards", "null_keys", "null_seed", "field"}
    if set(params) - {"normalize"} != want or any(r not in ("tokenizer", "filter", "input", "partial")
                                  for r, _, _ in named):
        raise Usage("audit merge: unexpected parameters or input roles")
    if len(keyed) != 1:
        raise Usage("audit merge: one keyed profile expected")
    tok = [(n, f) for r, n, f in named if r == "tokenizer"]
    if len(tok) != 1:
        raise Usage("audit merge: one tokenizer.json expected")
    partials = [(n, f) for r, n, f in named if r == "partial"]
    if len(partials) != params["shards"]:
        raise Usage("audit merge: one partial per shard expected")
    corpus = {k: params[k] for k in ("alpha", "null_keys", "null_seed", "field", "normalize")
              if k in params}
    profile, key = keyed[0]
    results, decision, tokenizers = run_corpus(
        corpus, profile, key, tok[0], [(n, f) for r, n, f in named if r == "filter"], [],
        [(n, f) for r, n, f in named if r == "input"])
    files = [(None, r, n, f) for r, n, f in named if r != "partial"]
    report = assemble("audit merge", params, [("alpha", params["alpha"])], [], files + [
        (None, "partial", n, f) for n, f in partials], results, decision, tokenizers)
    # The bound corpus files have no word in the replay (§7.5), and the
    # profile is given without its key.
    skip = {f"@input:{i}" for i in range(len(files))}
    replay = [w for w in report["command"]["replay"] if w not in skip]
    report["command"]["replay"] = replay[:4] + ["--profile", "@profile:0"] + replay[4:]
    report["profiles"] = [profile_entry(profile, key)]
    return report


def verify(path, key_paths, files):
    raw = pathlib.Path(path).read_bytes()
    try:
        report = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise Usage(f"{path}: not a JSON report: {type(e).__name__}: {e}") from None
    if not isinstance(report, dict) or report.get("format") != FORMAT:
        raise Usage(f"{path}: not a {FORMAT} report")
    problems = []
    sig = report.get("signature")
    if sig is not None and not (
            isinstance(sig, dict) and set(sig) == {"algorithm", "public_key", "signed", "value"}
            and sig["algorithm"] == "ed25519" and sig["signed"] == "digest"
            and isinstance(sig["public_key"], str) and re.fullmatch(r"[0-9a-f]{64}", sig["public_key"])
            and isinstance(sig["value"], str) and re.fullmatch(r"[0-9a-f]{128}", sig["value"])):
        problems.append(("signature", sig, "an ed25519 signature of the form report.md §2 gives"))
    if raw != (jcs(report) + "\n").encode("utf-8"):
        problems.append(("(file)", "not its RFC 8785 canonical bytes", None))
    if digest_of(report) != report.get("digest"):
        problems.append(("digest", report.get("digest"), digest_of(report)))
    keys = [read_key(k) for k in key_paths]
    keyed = [e for e in report.get("profiles", []) if e.get("key_commitment") is not None]
    if len(keys) != len(keyed):
        raise Usage(f"the report has {len(keyed)} keyed profile(s); {len(keys)} key(s) given")
    for i, (e, k) in enumerate(zip(keyed, keys)):
        if ref.commitment(k) != e["key_commitment"]:
            problems.append((f"profiles[{i}].key_commitment", e["key_commitment"], ref.commitment(k)))
        if profile_digest(e["profile"]) != e["digest"]:
            problems.append((f"profiles[{i}].digest", e["digest"], profile_digest(e["profile"])))
    inputs = report.get("inputs", [])
    if len(files) != len(inputs):
        raise Usage(f"the report records {len(inputs)} input(s); {len(files)} file(s) given")
    for i, (e, f) in enumerate(zip(inputs, files)):
        d = hashlib.sha256(pathlib.Path(f).read_bytes()).hexdigest()
        if d != e["sha256"]:
            problems.append((f"inputs[{i}].sha256", e["sha256"], d))
    if not problems:
        mine = recompute(report, keys, files)
        a = {k: v for k, v in report.items() if k not in NOT_COMPARED}
        b = {k: v for k, v in mine.items() if k not in NOT_COMPARED}
        problems = compare(a, b)
    if problems:
        print(f"MISMATCH {path}")
        for p, rec, new in problems:
            print(f"  {p}: recorded {json.dumps(rec)}, recomputed {json.dumps(new)}")
        return 1
    sig = report.get("signature")
    note = ""
    if sig is not None:
        note = ("; signature NOT checked by this script (Ed25519 is not in Python's standard "
                "library): check it with `provmark report verify --signer` or any RFC 8032 verifier")
    print(f"MATCH {path}: recomputed from spec/SPEC.md and spec/report.md "
          f"({report['command']['name']}, {len(inputs)} input(s)); tool, run and collection taken as recorded{note}")
    return 0


# --- Command line -----------------------------------------------------------
def parse(argv):
    ap = argparse.ArgumentParser(prog="report_ref.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("detect")
    d.add_argument("inputs", nargs="+")
    d.add_argument("--profile", action="append", required=True)
    d.add_argument("--key", action="append", required=True)
    d.add_argument("--tokenizer", action="append", default=[])
    d.add_argument("--alpha", type=float, default=1e-6)
    d.add_argument("--field", default="text")
    d.add_argument("--jsonl", action="store_true")
    d.add_argument("--windows", action="store_true")
    d.add_argument("--window-min", type=int, default=DEFAULT_WINDOW_MIN)
    d.add_argument("--max-record-bytes", type=int, default=DEFAULT_MAX_RECORD_BYTES)
    d.add_argument("--force-tokenizer", action="store_true")
    d.add_argument("--normalize", choices=["none", "invisible"], default="none")
    d.add_argument("--report", required=True)
    a = sub.add_parser("audit")
    asub = a.add_subparsers(dest="audit", required=True)
    c = asub.add_parser("corpus")
    c.add_argument("inputs", nargs="+")
    c.add_argument("--profile", required=True)
    c.add_argument("--key", required=True)
    c.add_argument("--tokenizer", required=True)
    c.add_argument("--filter-from", action="append", default=[])
    c.add_argument("--reference", action="append", default=[])
    c.add_argument("--null-keys", type=int, default=999)
    c.add_argument("--null-seed", type=int, default=0)
    c.add_argument("--alpha", type=float, default=1e-3)
    c.add_argument("--field", default="text")
    c.add_argument("--normalize", choices=["none", "invisible"], default="none")
    c.add_argument("--report", required=True)
    v = sub.add_parser("verify")
    v.add_argument("report")
    # Both `--key A B` and provmark's `--key A --key B`.
    v.add_argument("--key", nargs="+", action="extend", default=[])
    v.add_argument("--inputs", nargs="+", action="extend", default=[])
    return ap.parse_args(argv)


def main(argv):
    args = parse(argv)
    started = time.time()
    try:
        if args.cmd == "verify":
            return verify(args.report, args.key, args.inputs)
        if args.cmd == "detect":
            if len(args.profile) != len(args.key):
                raise Usage("give one --key per --profile, in the same order")
            keyed = [(read_profile(p), read_key(k)) for p, k in zip(args.profile, args.key)]
            params = {"alpha": args.alpha, "field": args.field, "max_record_bytes": args.max_record_bytes,
                      "window_min": args.window_min, "jsonl": args.jsonl, "windows": args.windows,
                      "force_tokenizer": args.force_tokenizer}
            if args.normalize != "none":
                params["normalize"] = args.normalize
            report = detect_report(params, keyed, [(t, t) for t in args.tokenizer],
                                   [(f, f) for f in args.inputs])
        else:
            params = {"alpha": args.alpha, "null_keys": args.null_keys, "null_seed": args.null_seed,
                      "field": args.field}
            if args.normalize != "none":
                params["normalize"] = args.normalize
            report = corpus_report(params, read_profile(args.profile), read_key(args.key),
                                   (args.tokenizer, args.tokenizer),
                                   [(f, f) for f in args.filter_from],
                                   [(f, f) for f in args.reference], [(f, f) for f in args.inputs])
        write_report(args.report, finish(report, started))
        print(f"wrote {args.report} ({report['digest']})")
        return 0
    except Usage as e:
        print(f"report_ref.py: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"report_ref.py: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # a report this script cannot recompute: say so, exit 2
        print(f"report_ref.py: cannot recompute: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
