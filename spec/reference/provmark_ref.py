#!/usr/bin/env python3
"""Independent reference implementation of provmark-wm/1, written from
spec/SPEC.md alone (standard library + mpmath), and the generator of
spec/vectors/provmark-wm-1.json.

    python3 spec/reference/provmark_ref.py > spec/vectors/provmark-wm-1.json

The Rust crates load that file in their tests: every seed, keystream word,
per-token score, statistic and p-value below must be reproduced.
"""
import hashlib
import hmac
import json
import math
import random
import struct
import sys

import mpmath

SPEC = "provmark-wm/1"
mpmath.mp.dps = 60


# --- ChaCha20 keystream (spec §4.2) -------------------------------------
def _rotl(v, c):
    return ((v << c) & 0xFFFFFFFF) | (v >> (32 - c))


def _quarter(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = _rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = _rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = _rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = _rotl(s[b] ^ s[c], 7)


def chacha20_block(key, counter):
    """16 output words of block `counter` (64-bit counter, stream id 0)."""
    const = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    k = list(struct.unpack("<8I", key))
    state = const + k + [counter & 0xFFFFFFFF, counter >> 32, 0, 0]
    s = list(state)
    for _ in range(10):
        _quarter(s, 0, 4, 8, 12); _quarter(s, 1, 5, 9, 13)
        _quarter(s, 2, 6, 10, 14); _quarter(s, 3, 7, 11, 15)
        _quarter(s, 0, 5, 10, 15); _quarter(s, 1, 6, 11, 12)
        _quarter(s, 2, 7, 8, 13); _quarter(s, 3, 4, 9, 14)
    return [(s[i] + state[i]) & 0xFFFFFFFF for i in range(16)]


def word(seed, pos):
    return chacha20_block(seed, pos // 16)[pos % 16]


def dword(seed, pos):
    return word(seed, pos) | (word(seed, pos + 1) << 32)


# --- Keys and profiles (spec §2, §3) -------------------------------------
def key_id(key):
    return hashlib.sha256(f"{SPEC}/key-id".encode() + b"\0" + key).hexdigest()[:16]


def commitment(key):
    return hashlib.sha256(f"{SPEC}/key-commitment".encode() + b"\0" + key).hexdigest()


def jcs_number(x):
    # ECMAScript Number-to-String for the values used here.
    if isinstance(x, int) or (float(x).is_integer() and abs(x) < 1e21):
        return str(int(x))
    r = repr(float(x))
    assert "e" not in r, "exponent forms are not needed by these vectors"
    return r


def jcs(v):
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k) + ":" + jcs(v[k]) for k in sorted(v)) + "}"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    return jcs_number(v)


def profile_json(scheme, params, context, tokenizer, key):
    return {"spec": SPEC, "scheme": scheme, "params": params, "context": context,
            "tokenizer": tokenizer, "key_id": key_id(key)}


def prf_params(profile):
    if profile["scheme"] == "kgw":
        return struct.pack("<d", profile["params"]["gamma"])
    if profile["scheme"] == "synthid":
        return struct.pack("<I", profile["params"]["layers"])
    return b""


# --- Seeds and per-token scores (spec §4, §7) -----------------------------
def seed(key, profile, window):
    name = profile["scheme"].encode()
    msg = (SPEC.encode() + b"/seed\0" + bytes([len(name)]) + name + prf_params(profile)
           + struct.pack("<I", profile["context"]) + b"".join(struct.pack("<I", t) for t in window))
    return hmac.new(key, msg, hashlib.sha256).digest()


def kgw_threshold(gamma):
    return math.ceil(gamma * 2**16)


def kgw_value(seed_bytes, token):
    """u16le at keystream bytes 2t, 2t+1."""
    return (word(seed_bytes, token // 2) >> (16 * (token & 1))) & 0xFFFF


def gumbel_j(seed_bytes, token):
    return dword(seed_bytes, 2 * token) >> 12


GUMBEL_UNITS = 2**16


def gumbel_units(j):
    """Spec §7 (revision 7): floor(2^16 * -ln(1 - r)), an exact integer.
    -ln(1 - r) is never a multiple of 2^-16 (Lindemann), so 60 digits decide it;
    the assertion guards the margin."""
    one_minus_r = mpmath.mpf(2 * ((1 << 52) - 1 - j) + 1) / 2**53
    y = -mpmath.log(one_minus_r) * GUMBEL_UNITS
    units = int(mpmath.floor(y))
    assert min(y - units, units + 1 - y) > mpmath.mpf(10) ** -40
    return units


def gumbel_score(j):
    """The fixed-point score units / 2^16: exact in binary64, so sums of scores
    are exact (order-free) while below 2^37."""
    return gumbel_units(j) / GUMBEL_UNITS


def token_score(profile, seed_bytes, token):
    s = profile["scheme"]
    if s == "kgw":
        return 1.0 if kgw_value(seed_bytes, token) < kgw_threshold(profile["params"]["gamma"]) else 0.0
    if s == "gumbel":
        return gumbel_score(gumbel_j(seed_bytes, token))
    m = profile["params"]["layers"]
    return float(bin(word(seed_bytes, token) & ((1 << m) - 1)).count("1"))


# --- Detection (spec §5, §8) -----------------------------------------------
def binom_pmf(x, n, p):
    p = mpmath.mpf(p)
    return mpmath.exp(mpmath.loggamma(n + 1) - mpmath.loggamma(x + 1) - mpmath.loggamma(n - x + 1)
                      + x * mpmath.log(p) + (n - x) * mpmath.log(1 - p))


def binom_tail(k, n, p):
    """P(Bin(n, p) >= k) by direct summation at 60 significant digits."""
    if k <= 0:
        return mpmath.mpf(1)
    p = mpmath.mpf(p)
    odds = p / (1 - p)
    upper = k > n * p
    x = k if upper else k - 1
    term = binom_pmf(x, n, p)
    total = term
    while True:
        if upper:
            if x == n:
                break
            term *= (n - x) * odds / (x + 1)
            x += 1
        else:
            if x == 0:
                break
            term *= x / ((n - x + 1) * odds)
            x -= 1
        total += term
        if term < total * mpmath.mpf(10) ** -40:
            break
    return total if upper else 1 - total


def gamma_tail(n, x):
    return mpmath.gammainc(n, 0 if x <= 0 else mpmath.mpf(x), mpmath.inf, regularized=True)


def log10(p):
    return float(mpmath.log10(p)) if p > 0 else float("-inf")


def detect(key, profile, tokens):
    h = profile["context"]
    seen = set()
    scored, dups, stat = 0, 0, 0.0
    for i in range(h, len(tokens)):
        tup = tuple(tokens[i - h:i + 1])
        if tup in seen:
            dups += 1
            continue
        seen.add(tup)
        stat += token_score(profile, seed(key, profile, tokens[i - h:i]), tokens[i])
        scored += 1
    out = {"tokens": len(tokens), "scored": scored, "duplicates": dups, "statistic": stat}
    if scored == 0:
        return out
    s = profile["scheme"]
    if s == "kgw":
        g = mpmath.mpf(kgw_threshold(profile["params"]["gamma"])) / 2**16
        p = binom_tail(int(stat), scored, g)
        z = (stat - scored * g) / mpmath.sqrt(scored * g * (1 - g))
    elif s == "synthid":
        trials = scored * profile["params"]["layers"]
        p = binom_tail(int(stat), trials, mpmath.mpf(1) / 2)
        z = (stat - trials / 2) / mpmath.sqrt(trials / 4)
    else:
        p = gamma_tail(scored, stat)
        z = (stat - scored) / mpmath.sqrt(scored)
    out["log10_p"] = log10(p)
    out["z"] = float(z)
    return out


def corpus_test(key, profile, texts):
    """Spec §8.1: the distinct tuples over all texts, tested as one sample."""
    h = profile["context"]
    seen = set()
    for tokens in texts:
        for i in range(h, len(tokens)):
            seen.add(tuple(tokens[i - h:i + 1]))
    stat = 0.0
    for tup in sorted(seen):
        stat += token_score(profile, seed(key, profile, list(tup[:h])), tup[h])
    # The exact test of §8 on the pooled (n, S): reuse detect's tail code on a
    # synthetic text is not possible, so compute it directly.
    return test_pooled(profile, len(seen), stat)


def reading_tuples(profile, tokens, predictions):
    """Spec §8.2 (revision 6): (real window, prediction) for positions max(h, 1) .. L-1
    whose window is not the window of an earlier position of the text."""
    h = profile["context"]
    seen, out = set(), set()
    for i in range(h, len(tokens)):
        w = tuple(tokens[i - h:i])
        if w in seen:
            continue
        seen.add(w)
        if i >= 1:
            out.add(w + (predictions[i],))
    return out


def score_set(key, profile, tuples):
    h = profile["context"]
    stat = 0.0
    for tup in sorted(tuples):
        stat += token_score(profile, seed(key, profile, list(tup[:h])), tup[h])
    return stat


def null_key(s, i):
    """Spec §8.3: null key i for the public seed s."""
    return hashlib.sha256(b"provmark/key-swap-null/1\x00" + struct.pack("<QQ", s, i)).digest()


def test_pooled(profile, scored, stat):
    out = {"scored": scored, "statistic": stat}
    s = profile["scheme"]
    if s == "kgw":
        g = mpmath.mpf(kgw_threshold(profile["params"]["gamma"])) / 2**16
        p = binom_tail(int(stat), scored, g)
    elif s == "synthid":
        p = binom_tail(int(stat), scored * profile["params"]["layers"], mpmath.mpf(1) / 2)
    else:
        p = gamma_tail(scored, stat)
    out["log10_p"] = log10(p)
    return out


# --- Expected-score reading test (spec §8.5) --------------------------------
def expected_value(profile, seed_bytes, token):
    """Spec §8.5 token value: the §7 score, except gumbel's uniform r."""
    if profile["scheme"] == "gumbel":
        return (2 * gumbel_j(seed_bytes, token) + 1) / 2**53
    return token_score(profile, seed_bytes, token)


def value_law(profile):
    """(mean, variance, centred cumulant generating function K) of the value."""
    s = profile["scheme"]
    if s == "kgw":
        g = kgw_threshold(profile["params"]["gamma"]) / 2**16
        return g, g * (1 - g), lambda x: math.log1p(g * math.expm1(x)) - g * x if x <= 0 else \
            x * (1 - g) + math.log(g + (1 - g) * math.exp(-x))
    if s == "synthid":
        m = profile["params"]["layers"]
        return m / 2, m / 4, lambda x: m * (abs(x) / 2 + math.log1p(math.exp(-abs(x))) - math.log(2))

    def k_uniform(x):
        a = abs(x) / 2
        if a < 1e-3:
            return a * a / 6 - a ** 4 / 180
        return a + math.log1p(-math.exp(-2 * a)) - math.log(2) - math.log(a)
    return 0.5, 1 / 12, k_uniform


def expected_pairs(profile, tokens, first, weights):
    """Spec §8.5: summed weights of distinct (window, token) pairs, first-seen order.
    weights[i] is the list of (token, weight) of position i."""
    h = profile["context"]
    pairs, seen, positions, repeats = {}, set(), 0, 0
    for i in range(max(first, h), len(tokens)):
        w = tuple(tokens[i - h:i])
        if w in seen:
            repeats += 1
            continue
        seen.add(w)
        if i == 0:
            continue  # no prefix to read from, but its window counts as seen
        positions += 1
        for t, a in weights[i]:
            if a != 0:
                pairs[w + (t,)] = pairs.get(w + (t,), 0.0) + a
    return pairs, positions, repeats


def expected_statistic(key, profile, pairs):
    mean = value_law(profile)[0]
    h = profile["context"]
    return math.fsum(a * (expected_value(profile, seed(key, profile, list(t[:h])), t[h]) - mean)
                     for t, a in pairs.items())


def chernoff_log10(profile, weights, t):
    """Spec §8.5: log10 of inf_{λ≥0} exp(Σ K(λ a) − λ t); 0 when t ≤ 0."""
    if t <= 0:
        return 0.0
    _, var, k = value_law(profile)

    def f(lam):
        return math.fsum(k(lam * a) for a in weights) - lam * t

    # f is convex: ternary-free bisection on its slope, by finite differences.
    lo, hi = 0.0, t / (var * math.fsum(a * a for a in weights))
    while f(hi * 1.000001) < f(hi):
        lo, hi = hi, 2 * hi
    for _ in range(200):
        m1, m2 = lo + (hi - lo) / 3, hi - (hi - lo) / 3
        if f(m1) < f(m2):
            hi = m2
        else:
            lo = m1
    lam = mpmath.mpf((lo + hi) / 2)
    # The minimum's value at 60 digits (K evaluated in mpmath).
    s = profile["scheme"]
    total = -lam * mpmath.mpf(t)
    for a in weights:
        x = lam * mpmath.mpf(a)
        if s == "kgw":
            g = mpmath.mpf(kgw_threshold(profile["params"]["gamma"])) / 2**16
            total += mpmath.log(1 - g + g * mpmath.exp(x)) - g * x
        elif s == "synthid":
            total += profile["params"]["layers"] * mpmath.log(mpmath.cosh(x / 2))
        else:
            total += mpmath.log(mpmath.sinh(x / 2) / (x / 2)) if x != 0 else 0
    return float(min(total, 0) / mpmath.log(10))


def shared_starts(lab, suspect):
    """Spec §8.6: (j, k) where both tokenizations start a boundary at one byte."""
    def starts(offs):
        return [(a, i) for i, (a, _) in enumerate(offs) if i == 0 or offs[i - 1][1] == a]
    at = {}
    for a, k in starts(suspect):
        at.setdefault(a, k)
    return sorted((j, at[a]) for a, j in starts(lab) if a in at)


def cross_pairs(profile, lab_tokens, lab_offsets, suspect_offsets, weights):
    """Spec §8.6 with §8.5: the lab's read positions and their summed weights."""
    h = profile["context"]
    read = [(j, k) for j, k in shared_starts(lab_offsets, suspect_offsets) if j >= h and k >= 1]
    pairs, seen, positions, repeats, note = {}, set(), 0, 0, h
    for j, k in read:
        for skipped in range(note, j):
            seen.add(tuple(lab_tokens[skipped - h:skipped]))
        note = j + 1
        w = tuple(lab_tokens[j - h:j])
        if w in seen:
            repeats += 1
            continue
        seen.add(w)
        positions += 1
        for t, a in weights[k]:
            if a != 0:
                pairs[w + (t,)] = pairs.get(w + (t,), 0.0) + a
    return read, pairs, positions, repeats


# --- Normalising invisible edits (spec §5.1, revision 8) -------------------
# The closed table of §5.1, as the spec lists it.
INVISIBLE_REMOVED = [(0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
                     (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
                     (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
                     (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
                     (0xE0000, 0xE0FFF)]
INVISIBLE_SPACES = {0x00A0, 0x1680, 0x202F, 0x205F, 0x3000} | set(range(0x2000, 0x200B))
INVISIBLE_LINE_BREAKS = {0x0085, 0x2028, 0x2029}


def normalize(name, text):
    """(normalised text, invisible_edits) under normalisation `name` (§5.1)."""
    if name in (None, "none"):
        return text, 0
    if name != "invisible":
        raise ValueError(f"unknown normalization {name!r}")
    out, edits = [], 0
    for ch in text:
        c = ord(ch)
        if c in INVISIBLE_SPACES:
            out.append(" ")
            edits += 1
        elif c in INVISIBLE_LINE_BREAKS:
            out.append("\n")
            edits += 1
        elif any(lo <= c <= hi for lo, hi in INVISIBLE_REMOVED):
            edits += 1
        else:
            out.append(ch)
    return "".join(out), edits


def normalization_cases():
    """Texts for the `normalizations` vectors: the issue's two edits, every
    listed code point's neighbours, and random mixtures (own generator)."""
    nr = random.Random(14)
    marked = "The quick brown fox, 3 cafés and 中文。"
    cases = [marked, marked.replace(" ", "\u00a0"), marked.replace(" ", " \u200b"),
             "\u00a0\u200b\u2028\u2029\u0085\ufeff", "👩\u200d💻 ❤\ufe0f", "全角，「…」² ﬁ"]
    edges = set()
    for lo, hi in INVISIBLE_REMOVED:
        edges.update((lo - 1, lo, hi, hi + 1))
    for c in INVISIBLE_SPACES | INVISIBLE_LINE_BREAKS:
        edges.update((c - 1, c, c + 1))
    edges = sorted(c for c in edges if 0 < c < 0x110000 and not 0xD800 <= c <= 0xDFFF)
    cases.append("".join(chr(c) for c in edges))
    pool = [chr(c) for c in edges] + list("ab ,.\n\t") + ["中", "é", "😀"]
    for _ in range(6):
        cases.append("".join(nr.choice(pool) for _ in range(nr.randrange(1, 40))))
    return cases


# --- A marked text: pick, among a few candidates, the one the key favours.
def marked_tokens(key, profile, rng, length, vocab):
    h = profile["context"]
    toks = [rng.randrange(vocab) for _ in range(max(h, 1))]
    while len(toks) < length:
        cands = [rng.randrange(vocab) for _ in range(4)]
        sd = seed(key, profile, toks[len(toks) - h:])
        toks.append(max(cands, key=lambda t: (token_score(profile, sd, t), -t)))
    return toks


def main():
    rng = random.Random(20261127)
    keys = [bytes(range(32)), hashlib.sha256(b"provmark test key 2").digest()]
    tok = "sha256:" + hashlib.sha256(b"test tokenizer").hexdigest()
    profiles = [
        profile_json("kgw", {"gamma": 0.25, "delta": 2.0}, 2, tok, keys[0]),
        profile_json("kgw", {"gamma": 0.1, "delta": 4.5}, 1, tok, keys[1]),
        profile_json("gumbel", {}, 2, tok, keys[0]),
        profile_json("synthid", {"layers": 30}, 3, tok, keys[0]),
        profile_json("kgw", {"gamma": 0.5, "delta": 1.0}, 0, tok, keys[1]),
    ]
    profile_keys = [0, 1, 0, 0, 1]
    out = {"spec": SPEC, "generator": "spec/reference/provmark_ref.py",
           "keys": [{"key_hex": k.hex(), "key_id": key_id(k), "commitment": commitment(k)} for k in keys],
           "profiles": [], "seeds": [], "token_values": [], "binomial_tails": [],
           "gamma_tails": [], "detections": []}
    for i, p in enumerate(profiles):
        c = jcs(p)
        out["profiles"].append({"key_index": profile_keys[i], "profile": p, "canonical": c,
                                "digest": "sha256:" + hashlib.sha256(c.encode()).hexdigest()})
    for i, p in enumerate(profiles):
        key = keys[profile_keys[i]]
        for _ in range(3):
            window = [rng.randrange(2**32) if rng.random() < 0.2 else rng.randrange(50000)
                      for _ in range(p["context"])]
            sd = seed(key, p, window)
            positions = [0, 1, 15, 16, 63, 1000, 151935, 2**32 - 1, 2**32]
            out["seeds"].append({"profile_index": i, "window": window, "seed_hex": sd.hex(),
                                 "words": [[pos, word(sd, pos)] for pos in positions]})
            for t in [0, 1, 2, 17, 49151, 151935, 255999, 2**32 - 1]:
                out["token_values"].append({"profile_index": i, "window": window, "token": t,
                                            "score": token_score(p, sd, t)})
    # Gumbel fixed-point scores (§7, revision 7): random j, the extremes, and j
    # whose -ln(1 - r) lies within about 2^-36 of a multiple of 2^-16 (found by
    # inverting the boundary: 1 - r = exp(-q / 2^16) rounded to the 2^-52 grid;
    # that comes close for q up to about 5e5, where the grid is still fine).
    out["gumbel_scores"] = []
    jr = random.Random(7)  # its own generator: the other vectors keep their draws
    js = [0, 1, (1 << 52) - 1, (1 << 52) - 2, 1 << 51] + [jr.randrange(1 << 52) for _ in range(12)]
    for q in [1, 2, 3, 1000, 45426, 65535, 65536, 65537, 131072, 300000, 1000000, 2000000, 2400000]:
        k = int(mpmath.nint((mpmath.exp(-mpmath.mpf(q) / GUMBEL_UNITS) * 2**53 - 1) / 2))
        for kk in (k - 1, k, k + 1):
            if 0 <= kk < (1 << 52):
                js.append((1 << 52) - 1 - kk)
    for j in js:
        out["gumbel_scores"].append({"j": j, "units": gumbel_units(j), "score": gumbel_score(j)})
    for n, k, p in [(10, 3, 0.25), (200, 50, 0.25), (200, 80, 0.25), (200, 200, 0.25),
                    (1000, 600, 0.25), (5000, 5000, 0.5), (3000, 2990, 0.25),
                    (100000, 26000, 0.25), (6000, 3500, 0.5), (1000000, 250400, 0.25),
                    (60000, 30000, 0.5), (100, 1, 0.1), (100000, 100000, 0.25),
                    (40000, 39000, 0.1)]:
        out["binomial_tails"].append({"k": k, "n": n, "p": p, "log10_p": log10(binom_tail(k, n, p))})
    for n, x in [(1, 0.5), (1, 30.0), (10, 5.0), (10, 25.0), (100, 100.0), (100, 180.5),
                 (1000, 3000.0), (2000, 12000.25), (50, 20.0), (100000, 100500.0)]:
        out["gamma_tails"].append({"n": n, "x": x, "log10_p": log10(gamma_tail(n, x))})
    for i, p in enumerate(profiles):
        key = keys[profile_keys[i]]
        plain = [rng.randrange(49152) for _ in range(300)]
        repeated = plain[:40] * 5 + plain[:60]
        for tokens in (plain, repeated, plain[:p["context"]], marked_tokens(key, p, rng, 1500, 49152)):
            d = detect(key, p, tokens)
            d.update({"profile_index": i, "token_ids": tokens})
            out["detections"].append(d)
    # Corpora (§8.1): each profile's four detection texts plus its plain text
    # again, pooled; cross-text repeats count once.
    out["corpora"] = []
    for i, p in enumerate(profiles):
        key = keys[profile_keys[i]]
        cases = [j for j, d in enumerate(out["detections"]) if d["profile_index"] == i]
        texts = [out["detections"][j]["token_ids"] for j in cases] + [out["detections"][cases[0]]["token_ids"]]
        c = corpus_test(key, p, texts)
        c.update({"profile_index": i, "detection_indices": cases + [cases[0]]})
        # Key-swap null (§8.3): the same distinct tuples under 4 null keys.
        h = p["context"]
        tuples = {tuple(t[k - h:k + 1]) for t in texts for k in range(h, len(t))}
        nulls = []
        for k in range(4):
            nk = null_key(7, k)
            np_ = profile_json(p["scheme"], p["params"], h, p["tokenizer"], nk)
            nulls.append(score_set(nk, np_, tuples))
        c.update({"null_seed": 7, "null_statistics": nulls,
                  "swap_at_least": sum(1 for x in nulls if x >= c["statistic"])})
        out["corpora"].append(c)
    # Reading mode (§8.2): each profile's plain and marked texts with random
    # "predictions" (a suspect that learned nothing) and the text's own next
    # tokens as predictions (one that predicts the marked text perfectly).
    out["readings"] = []
    for i, p in enumerate(profiles):
        key = keys[profile_keys[i]]
        cases = [j for j, d in enumerate(out["detections"]) if d["profile_index"] == i]
        for j in (cases[0], cases[3]):
            toks = out["detections"][j]["token_ids"]
            for preds in ([rng.randrange(49152) for _ in toks], list(toks)):
                tuples = reading_tuples(p, toks, preds)
                r = test_pooled(p, len(tuples), score_set(key, p, tuples))
                r.update({"profile_index": i, "detection_index": j, "predictions": preds})
                out["readings"].append(r)
    # Expected-score readings (§8.5), with their own random stream so that
    # the vectors above do not move: each profile's plain and marked texts,
    # key-independent weights (multiples of 1/1024, so sums are exact) on
    # up to 5 tokens per position, once bare and once after a "prompt" of 7
    # with extra weight on the marked text's own next tokens.
    erng = random.Random(20261201)
    out["expected_readings"] = []
    for i, p in enumerate(profiles):
        key = keys[profile_keys[i]]
        cases = [j for j, d in enumerate(out["detections"]) if d["profile_index"] == i]
        for j, first in ((cases[0], 0), (cases[3], 7)):
            toks = out["detections"][j]["token_ids"][:160]
            weights = [[[erng.randrange(49152) if erng.random() < 0.7 else toks[min(k, len(toks) - 1)],
                         erng.randrange(-512, 513) / 1024] for _ in range(erng.randrange(1, 6))]
                       for k in range(len(toks))]
            if first:
                # A reader that learned the marked text: weight on its real next tokens.
                for k in range(len(toks)):
                    weights[k].append([toks[k], erng.randrange(256, 513) / 1024])
            pairs, positions, repeats = expected_pairs(p, toks, first, weights)
            stat = expected_statistic(key, p, pairs)
            a = list(pairs.values())
            nulls = []
            for k in range(4):
                nk = null_key(7, k)
                np_ = profile_json(p["scheme"], p["params"], p["context"], p["tokenizer"], nk)
                nulls.append(expected_statistic(nk, np_, pairs))
            out["expected_readings"].append({
                "profile_index": i, "detection_index": j, "tokens": len(toks), "first": first,
                "weights": weights, "positions": positions, "repeats": repeats, "pairs": len(pairs),
                "statistic": stat, "variance": value_law(p)[1] * math.fsum(x * x for x in a),
                "log10_p": chernoff_log10(p, a, stat), "null_seed": 7, "null_statistics": nulls})
    # Reading across tokenizers (§8.6): the lab's tokens given byte ranges
    # of random lengths, and a second segmentation of the same bytes with
    # some pieces of one "character" sharing a range.
    out["cross_readings"] = []
    for i in (0, 3):
        p, key = profiles[i], keys[profile_keys[i]]
        # A self-repeating text (windows recur, read or not) and a marked one.
        j = [d for d in range(len(out["detections"])) if out["detections"][d]["profile_index"] == i][1 if i == 0 else 3]
        toks = out["detections"][j]["token_ids"][:120]
        lab_off, x = [], 0
        for _ in toks:
            n = erng.randrange(1, 5)
            lab_off.append([x, x + n])
            x += n
        sus_off, y = [], 0
        while y < x:
            n = min(erng.randrange(1, 7), x - y)
            if n >= 2 and erng.random() < 0.15:
                sus_off += [[y, y + n], [y, y + n]]
            else:
                sus_off.append([y, y + n])
            y += n
        starts = {a for a, _ in lab_off}
        weights = []
        for k in range(len(sus_off)):
            row = [[erng.randrange(49152), erng.randrange(-512, 513) / 1024] for _ in range(erng.randrange(1, 4))]
            # Weight on the lab token that starts where this suspect token does.
            for jj, (a, _) in enumerate(lab_off):
                if a == sus_off[k][0]:
                    row.append([toks[jj], erng.randrange(128, 513) / 1024])
                    break
            weights.append(row)
        read, pairs, positions, repeats = cross_pairs(p, toks, lab_off, sus_off, weights)
        stat = expected_statistic(key, p, pairs)
        out["cross_readings"].append({
            "profile_index": i, "detection_index": j, "tokens": len(toks),
            "lab_offsets": lab_off, "suspect_offsets": sus_off, "weights": weights,
            "shared_starts": [list(r) for r in read], "positions": positions, "repeats": repeats,
            "pairs": len(pairs), "statistic": stat,
            "log10_p": chernoff_log10(p, list(pairs.values()), stat)})
    out["normalizations"] = []
    for text in normalization_cases():
        norm, edits = normalize("invisible", text)
        out["normalizations"].append({"normalize": "invisible", "text": text,
                                      "normalized": norm, "invisible_edits": edits})
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()


# --- GGUF tokenizer digest (spec §3, revision 7) -------------------------
# A small GGUF metadata reader, written from the GGUF format description
# (version 2/3, little-endian) and SPEC.md §3 alone. Run with
#   python3 -c "import sys; sys.path.insert(0, 'spec/reference'); \
#     import provmark_ref; provmark_ref.gguf_vectors_main()" \
#     > spec/vectors/gguf-tokenizer.json
# (it reads spec/vectors/gguf-tokenizer.gguf).
GGUF_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
GGUF_STRING, GGUF_ARRAY = 8, 9
GGUF_TOKENIZER_DOMAIN = b"provmark-wm/1/gguf-tokenizer"
GGUF_TOKENIZER_PREFIX = b"tokenizer.ggml."


def _gguf_value_end(buf, at, tag):
    """Offset just past a value of type `tag` starting at `at`."""
    if tag in GGUF_FIXED:
        return at + GGUF_FIXED[tag]
    if tag == GGUF_STRING:
        (n,) = struct.unpack_from("<Q", buf, at)
        return at + 8 + n
    if tag == GGUF_ARRAY:
        inner, count = struct.unpack_from("<IQ", buf, at)
        at += 12
        for _ in range(count):
            at = _gguf_value_end(buf, at, inner)
        return at
    raise ValueError(f"unknown GGUF value type {tag}")


def gguf_metadata_entries(buf):
    """The metadata entries of a GGUF file as (key bytes, raw entry bytes)."""
    magic, version, _tensors, count = struct.unpack_from("<4sIQQ", buf, 0)
    if magic != b"GGUF" or version not in (2, 3):
        raise ValueError("not a GGUF v2/v3 file")
    at, out = 24, []
    for _ in range(count):
        start = at
        (n,) = struct.unpack_from("<Q", buf, at)
        key = bytes(buf[at + 8:at + 8 + n])
        (tag,) = struct.unpack_from("<I", buf, at + 8 + n)
        at = _gguf_value_end(buf, at + 12 + n, tag)
        if at > len(buf):
            raise ValueError("the file ends inside its metadata")
        out.append((key, bytes(buf[start:at])))
    keys = [k for k, _ in out]
    if len(set(keys)) != len(keys):
        raise ValueError("a metadata key appears twice")
    return out


def gguf_tokenizer_digest(buf):
    """SPEC §3: SHA-256 over the sorted tokenizer.ggml.* entries."""
    entries = sorted((k, e) for k, e in gguf_metadata_entries(buf)
                     if k.startswith(GGUF_TOKENIZER_PREFIX))
    pre = GGUF_TOKENIZER_DOMAIN + b"\0" + struct.pack("<Q", len(entries))
    pre += b"".join(e for _, e in entries)
    return "sha256:" + hashlib.sha256(pre).hexdigest(), [k.decode() for k, _ in entries]


def gguf_vectors_main(path="spec/vectors/gguf-tokenizer.gguf"):
    with open(path, "rb") as f:
        buf = f.read()
    digest, keys = gguf_tokenizer_digest(buf)
    out = {"spec": SPEC, "generator": "spec/reference/provmark_ref.py (gguf_vectors_main)",
           "file": path.rsplit("/", 1)[-1], "sha256": hashlib.sha256(buf).hexdigest(),
           "bytes": len(buf), "keys": keys, "tokenizer_digest": digest}
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
