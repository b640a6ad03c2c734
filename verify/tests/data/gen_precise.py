#!/usr/bin/env python3
"""Reference values for verify/tests/precise.rs (revision 7 exact decisions).

Writes precise_tails.json next to this file: null tails of spec §8 computed
with mpmath at 80 significant digits (binomial tails as exact rationals
where n is small), independently of the Rust code. Run:

    python3 verify/tests/data/gen_precise.py

needs mpmath==1.3.0. The output is deterministic (fixed seed).
"""
import json
import os
import random
import mpmath

mpmath.mp.dps = 80


def binom_tail(k, n, a, b):
    """P(Bin(n, a/2^b) >= k): exact for small n, else mpmath summation."""
    if k <= 0:
        return mpmath.mpf(1)
    if k > n:
        return mpmath.mpf(0)
    p = mpmath.mpf(a) / 2**b
    if n <= 1500:
        c = 2**b - a
        num = 0
        coef = 1
        for x in range(0, n + 1):
            if x > 0:
                coef = coef * (n - x + 1) // x
            if x >= k:
                num += coef * a**x * c ** (n - x)
        return mpmath.mpf(num) / mpmath.mpf(2 ** (b * n))
    # Sum outward from the larger side with 80-digit terms.
    def pmf(x):
        return mpmath.exp(mpmath.loggamma(n + 1) - mpmath.loggamma(x + 1) - mpmath.loggamma(n - x + 1)
                          + x * mpmath.log(p) + (n - x) * mpmath.log(1 - p))
    upper = k > n * p
    x = k if upper else k - 1
    odds = p / (1 - p)
    term = pmf(x)
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
        if term < total * mpmath.mpf(10) ** -70:
            break
    return total if upper else 1 - total


def gamma_tail(n, x):
    if x <= 0:
        return mpmath.mpf(1)
    return mpmath.gammainc(n, mpmath.mpf(x), mpmath.inf, regularized=True)


def s(v):
    return mpmath.nstr(v, 50, min_fixed=1, max_fixed=0)


def record(kind, params, p):
    ln = mpmath.log(p) if p > 0 else None
    return dict(kind=kind, **params,
                ln=s(ln) if ln is not None else None,
                ln_f64=float(ln) if ln is not None else None,
                log10_f64=float(ln / mpmath.log(10)) if ln is not None else None,
                p_f64=float(p))


def main():
    rng = random.Random(20261201)
    tails = []
    # kgw (T/2^16) and synthid (1/2) binomial tails, around and far from the mean.
    for _ in range(150):
        if rng.random() < 0.6:
            t = rng.choice([16384, 13108, 32768, 45875, 6554])
            a, b = t, 16
            while a % 2 == 0:
                a //= 2
                b -= 1
            n = int(10 ** rng.uniform(0.3, 4.3))
        else:
            a, b = 1, 1
            n = int(10 ** rng.uniform(0.3, 4.0)) * rng.choice([1, 4, 30])
        mean = n * a / 2**b
        sd = max(1.0, (n * a / 2**b * (1 - a / 2**b)) ** 0.5)
        k = int(round(mean + sd * rng.choice([rng.uniform(-3, 3), rng.uniform(3, 40)])))
        k = max(1, min(n, k))
        tails.append(record("binomial", dict(k=k, n=n, a=a, b=b), binom_tail(k, n, a, b)))
    # Extreme binomial tails: below binary64's normal range, subnormal, below 2^-1075.
    for n in [1021, 1022, 1060, 1073, 1074, 1076, 1200, 5000]:
        tails.append(record("binomial", dict(k=n, n=n, a=1, b=1), binom_tail(n, n, 1, 1)))
    # Gamma tails at fixed-point statistics (multiples of 2^-16).
    for _ in range(150):
        n = int(10 ** rng.uniform(0, 3.7))
        x = n + n**0.5 * rng.choice([rng.uniform(-3, 3), rng.uniform(3, 30)])
        x = max(2.0**-16, round(x * 65536) / 65536)
        tails.append(record("gamma", dict(n=n, x=x), gamma_tail(n, x)))
    # Near-equal Gamma pairs: x2 (binary64) puts Q(n2, x2) as close to
    # Q(n1, x1) as binary64 allows; cmp is the exact order of the two.
    pairs = []
    for _ in range(40):
        n1 = int(10 ** rng.uniform(0.5, 3))
        n2 = n1 * rng.choice([2, 4]) if rng.random() < 0.5 else max(1, n1 // 2)
        x1 = round((n1 + n1**0.5 * rng.uniform(0, 8)) * 65536) / 65536
        q1 = gamma_tail(n1, x1)
        x2 = float(mpmath.findroot(lambda y: mpmath.log(gamma_tail(n2, y)) - mpmath.log(q1),
                                   n2 + (x1 - n1) * (n2 / n1) ** 0.5))
        best = min((abs(gamma_tail(n2, y) - q1), y) for y in
                   [x2, float(mpmath.mpf(x2) * (1 + mpmath.mpf(2) ** -52)), float(mpmath.mpf(x2) * (1 - mpmath.mpf(2) ** -52))])[1]
        q2 = gamma_tail(n2, best)
        if q1 == q2:
            continue
        pairs.append(dict(a=dict(n=n1, x=x1), b=dict(n=n2, x=best),
                          cmp=-1 if q1 < q2 else 1,
                          rel_gap=float(abs(q1 - q2) / q1)))
    # Values near 1 after a factor: ln(min(1, c·p)).
    scaled = []
    for _ in range(30):
        n = int(10 ** rng.uniform(0, 3))
        # x near the median of Gamma(n, 1), so 2·Q(n, x) ≈ 1.
        med = mpmath.findroot(lambda y: gamma_tail(n, y) - mpmath.mpf(1) / 2, n - mpmath.mpf(1) / 3)
        x = float(med) + rng.choice([0.0, 1e-9, -1e-9, 1e-5, -1e-4])
        v = 2 * gamma_tail(n, x)
        scaled.append(dict(factor=2, tail=dict(kind="gamma", n=n, x=x),
                           ln=float(mpmath.log(min(v, 1)))))
    for n in [1, 3, 101, 2001]:
        # Odd n, symmetric: the tail is exactly 1/2, so 2·p = 1.
        scaled.append(dict(factor=2, tail=dict(kind="binomial", k=(n + 1) // 2, n=n, a=1, b=1), ln=0.0))
    for n in [200, 1000, 4000]:
        k = n // 2 + 1
        v = 2 * binom_tail(k, n, 1, 1)
        scaled.append(dict(factor=2, tail=dict(kind="binomial", k=k, n=n, a=1, b=1),
                           ln=float(mpmath.log(min(v, 1)))))
    out = dict(tails=tails, pairs=pairs, scaled=scaled)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "precise_tails.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
